"""The reference health-status service: a real HTTP server that behaves like the government
services a device talks to, for development, tests, the demo and bench-testing a device.

Only `app`, `api_*`, `auth`, `errors`, `faults` and `server` need FastAPI/uvicorn (the `service`
extra); `seed`, `store`, `masking` and `tokens` do not, so the kiosk can import the demo constants
without the web stack. Nothing is imported here for the same reason.
"""
