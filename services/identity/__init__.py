"""Identity: who is calling, and may they.

- ``tokens``: validate JWT bearer tokens against an issuer's JWKS -> Principal
- ``guards``: Litestar middleware (401) and role guards (403)
- ``client``: client-credentials tokens for service-to-service calls
- ``issuer``: the built-in OpenID Connect issuer of the embedded mode
"""
