"""osbuild blueprints (TOML) for the tests of importing them."""

from __future__ import annotations

from tests.unit.domain.compose_requests import SHA512_HASH, ssh_key

# Written in the shape the osbuild blueprint reference documents, as someone
# would keep one for composer-cli: metadata, packages and modules, then the
# customizations, some tables and some arrays of tables.
WEB_SERVER = f'''
name = "web-server"
description = "nginx, an admin with a key, and a separate /var"
version = "1.4.2"
distro = "debian-12"

[[packages]]
name = "nginx"
version = "*"

[[packages]]
name = "curl"

[[packages]]
name = "htop"
version = "3.2.2-2"

[[modules]]
name = "vim"
version = "*"

[customizations]
hostname = "web-1.example.org"

[customizations.kernel]
append = "console=ttyS0 quiet"

[customizations.timezone]
timezone = "Europe/Berlin"
ntpservers = ["0.debian.pool.ntp.org", "1.debian.pool.ntp.org"]

[customizations.locale]
languages = ["en_US.UTF-8", "de_DE.UTF-8"]
keyboard = "de"

[[customizations.user]]
name = "admin"
key = "{ssh_key()}"
password = "{SHA512_HASH}"
groups = ["sudo", "webadmins"]

[[customizations.user]]
name = "deploy"
groups = ["webadmins"]
key = "{ssh_key("ssh-rsa", "deploy@ci")}"

[[customizations.group]]
name = "webadmins"

[customizations.services]
enabled = ["nginx.service", "ssh"]
disabled = ["apt-daily.timer"]
masked = ["getty@tty2"]

[[customizations.directories]]
path = "/srv/www"
mode = "0755"
user = "admin"
group = "www-data"
ensure_parents = true

[[customizations.files]]
path = "/srv/www/index.html"
mode = "0644"
user = "admin"
group = 33
data = """
<h1>It works</h1>
"""

[customizations.firewall]
ports = ["22:tcp", "80:tcp", "443/tcp", "60000-61000:udp"]

[[customizations.filesystem]]
mountpoint = "/"
minsize = "10 GiB"

[[customizations.filesystem]]
mountpoint = "/var"
minsize = 2147483648
'''
