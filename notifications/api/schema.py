"""OpenAPI post-processing: publish the routes as API.md writes them, without a trailing slash.

Both spellings are served; the schema lists one so clients and generated SDKs agree.
"""


def strip_trailing_slashes(result, generator, request, public):
    result["paths"] = {
        (path.rstrip("/") or "/"): operations for path, operations in result.get("paths", {}).items()
    }
    return result
