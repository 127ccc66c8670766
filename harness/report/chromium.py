"""The command-line flags of headless Chromium wherever this project opens its own pages:
the browser checks of the HTML report and the dashboard, the docs' screenshots, the
dashboard benchmark.

Headless, and nothing of the browser's own reaches out: no background services, and every
host name resolves to nothing, so even a request Chromium makes for itself cannot leave the
machine (what the page checks assert is stricter: the page itself asks for nothing).
"""

OFFLINE_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--no-default-browser-check",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--metrics-recording-only",
    "--no-pings",
    "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,AutofillServerCommunication",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]
