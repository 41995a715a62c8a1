"""004's example payloads, written once for every test that sends them."""

INVOICE_VARS = {
    "reseller_name": "Tech Connect SA",
    "month": "février",
    "year": "2026",
    "amount_fcfa": "450000",
    "link_portal": "https://admin-rgz.duckdns.org/invoices/latest",
    "invoice_number": "INV-2026-0001",
}
INCIDENT_VARS = {
    "incident_number": "INC-2026-000847",
    "title": "Fiber cut central",
    "description": "Central BGP flap, 45 sites offline",
    "priority": "P0",
    "affected_sites": 45,
    "detected_at": "2026-02-21T14:30:00Z",
    "status_link": "https://status.rgz.bj",
}
WELCOME_VARS = {
    "reseller_name": "Tech Connect SA",
    "validation_link": "https://admin-rgz.duckdns.org",
    "estimated_duration": "7-12 jours",
}

# The curl examples' JSON bodies.
INVOICE = {"to": "reseller@techconnect.bj", "template_key": "billing_invoice_monthly", "variables": INVOICE_VARS}
INCIDENT = {"to": "noc@rgz.bj,reseller@techconnect.bj", "template_key": "incident_alert_critical",
            "variables": INCIDENT_VARS}
WELCOME = {"to": "john@techconnect.bj", "template_key": "onboarding_welcome", "variables": WELCOME_VARS}
TEST_RENDER = {
    "to": "test@rgz.bj",
    "variables": {**INVOICE_VARS, "reseller_name": "Test Company", "link_portal": "https://admin-rgz.duckdns.org",
                  "invoice_number": "TEST-001"},
}
