"""A generous real-world template: an itemised invoice of 1,000 lines, grouped by category.

It does what a legitimate template does a lot of, per line: a macro call, method calls
(`format`, `replace`), filters, tests, `loop` attributes, conditionals. The operations
budget must let it through with a wide margin (tests), and bench/render.py times it.
"""
from __future__ import annotations

SUBJECT = "Facture {{ invoice_number }} — {{ lines|length }} lignes"
PREHEADER = "Total {{ lines|sum(attribute='amount') }} FCFA, échéance {{ due_date }}"
HTML = """{% from "components.html" import details, detail, link, spacer -%}
{% macro money(value) -%}
{{ "{:,.0f}".format(value).replace(",", " ") }}&nbsp;FCFA
{%- endmacro %}
{% macro row(line, index, shade) -%}
<tr style="background-color:{{ shade }};">
<td style="padding:4px 8px;color:#5b6b7f;">{{ index }}</td>
<td style="padding:4px 8px;">{{ line.sku|upper }}</td>
<td style="padding:4px 8px;">{{ line.description|truncate(60) }}{% if line.discount %} <em>(remise {{ line.discount }}&nbsp;%)</em>{% endif %}</td>
<td style="padding:4px 8px;text-align:right;">{{ line.quantity }}</td>
<td style="padding:4px 8px;text-align:right;">{{ money(line.unit_price) }}</td>
<td style="padding:4px 8px;text-align:right;font-weight:600;">{{ money(line.amount) }}</td>
</tr>
{%- endmacro %}
<p>Bonjour {{ customer }},</p>
<p>Voici le détail de votre facture {{ invoice_number }} ({{ lines|length }} lignes).</p>
{% call details() -%}
{{ detail("Facture:", invoice_number) }}
{{ detail("Échéance:", due_date) }}
{{ detail("Total:", money(lines|sum(attribute='amount'))) }}
{%- endcall %}
{{ spacer("20px") }}
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="font-size:13px;">
<tr><th>#</th><th>Réf.</th><th>Désignation</th><th>Qté</th><th>Prix unitaire</th><th>Montant</th></tr>
{% for group in lines|groupby("category") %}
<tr><td colspan="6" style="padding:8px;font-weight:700;">{{ group.grouper|title }} ({{ group.list|length }})</td></tr>
{% for line in group.list %}
{{ row(line, loop.index, loop.cycle("#ffffff", "#f5f8fc")) }}
{% endfor %}
<tr><td colspan="5" style="text-align:right;">Sous-total {{ group.grouper }}</td><td style="text-align:right;">{{ money(group.list|sum(attribute='amount')) }}</td></tr>
{% endfor %}
</table>
{{ spacer("20px") }}
<p>Votre espace: {{ link(link_portal) }}</p>
"""
TEXT = """Bonjour {{ customer }},

Facture {{ invoice_number }}, échéance {{ due_date }}.
{% for line in lines %}
{{ "%4d" % loop.index }}  {{ line.sku }}  {{ line.description|truncate(40) }}  {{ line.quantity }} x {{ line.unit_price }} = {{ line.amount }} FCFA{% if line.discount is not none and line.discount > 0 %} (-{{ line.discount }} %){% endif %}
{%- endfor %}

Total: {{ lines|sum(attribute='amount') }} FCFA
{{ link_portal }}
"""
REQUIRED = ["customer", "invoice_number", "due_date", "lines", "link_portal"]
CATEGORIES = ("matériel", "licences", "services", "transport")


def invoice_lines(count: int = 1000) -> list[dict]:
    """`count` invoice lines as an API client would send them in `variables`."""
    lines = []
    for index in range(count):
        quantity = 1 + index % 7
        unit_price = 1500 + (index * 37) % 90000
        discount = (index % 5) * 5
        lines.append({
            "sku": f"art-{index:05d}",
            "description": f"Point d'accès extérieur modèle {index % 13}, fixation et câblage compris, lot {index}",
            "category": CATEGORIES[index % len(CATEGORIES)],
            "quantity": quantity,
            "unit_price": unit_price,
            "discount": discount,
            "amount": quantity * unit_price * (100 - discount) // 100,
        })
    return lines


def invoice_variables(count: int = 1000) -> dict:
    return {
        "customer": "Tech Connect SA",
        "invoice_number": "INV-2026-0420",
        "due_date": "31/03/2026",
        "lines": invoice_lines(count),
        "link_portal": "https://admin-rgz.duckdns.org/invoices/INV-2026-0420",
    }
