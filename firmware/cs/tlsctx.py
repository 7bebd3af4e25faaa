"""TLS client context for the MQTT transport (imported only when config enables TLS)."""


def make_tls_context(ca: bytes, cert=None, key=None):
    """Context that verifies the broker against `ca`; cert/key add a per-device identity."""
    import tls

    ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
    if cert is not None and key is not None:
        ctx.load_cert_chain(cert, key)
    # Positional: MicroPython's SSLContext takes no keyword arguments here.
    ctx.load_verify_locations(ca)
    # Set explicitly: defaults differ between ports (the 1.29 stubs lack the attribute).
    ctx.verify_mode = tls.CERT_REQUIRED  # type: ignore[attr-defined]
    return ctx
