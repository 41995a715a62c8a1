"""Rendering, pure and separate from sending: sandbox, compile cache, analysis, renderer."""
from notifications.authoring.rendering.analysis import check_declarations, used_variables
from notifications.authoring.rendering.renderer import RenderedEmail, VersionSource, html_to_text, render

__all__ = ["RenderedEmail", "VersionSource", "check_declarations", "html_to_text", "render", "used_variables"]
