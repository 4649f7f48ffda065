#!/usr/bin/env bash
# Installs the Debian packages the test suite drives for real, or says how to.
set -euo pipefail
# binary:package pairs (a file or directory the package installs)
needed=(
  "/usr/bin/chromium:chromium"
  "/usr/bin/redis-server:redis-server"
  "/usr/bin/redis-sentinel:redis-sentinel"
  "/usr/bin/redis-cli:redis-tools"
  "/usr/bin/openssl:openssl"
  "/usr/bin/glewlwyd:glewlwyd"
  "/usr/bin/sqlite3:sqlite3"
  "/usr/sbin/krb5kdc:krb5-kdc"
  "/usr/sbin/kadmin.local:krb5-admin-server"
  "/usr/bin/kinit:krb5-user"
  "/usr/bin/krb5-config:libkrb5-dev"
  "/usr/bin/g++:build-essential"
  "/usr/bin/make:build-essential"
  "/usr/bin/python3:python3"
  "/usr/bin/curl:curl"
  "/usr/bin/script:bsdutils"
  "/usr/bin/uwsgi:uwsgi"
  "/usr/bin/uwsgi_python311:uwsgi-plugin-python3"
  "/usr/lib/python3/dist-packages/flask:python3-flask"
  "/usr/bin/php:php-cli"
  "/usr/share/simplesamlphp/www:simplesamlphp"
  "/usr/sbin/nginx:nginx"
  "/usr/bin/caddy:caddy"
  "/usr/lib/php/20220829/dom.so:php-xml"
  "/usr/lib/php/20220829/mbstring.so:php-mbstring"
  "/usr/bin/zsh:zsh"
  "/usr/bin/fish:fish"
  "/usr/bin/hyperfine:hyperfine"
  "/usr/lib/apache2/modules/mod_shib.so:libapache2-mod-shib"
  "/usr/sbin/shibd:libapache2-mod-shib"
)
missing=()
for pair in "${needed[@]}"; do
  bin=${pair%%:*}
  pkg=${pair#*:}
  [ -e "$bin" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "Installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  $cmd
else
  echo "The test suite needs these Debian packages: ${missing[*]}" >&2
  echo "Install them with: sudo $cmd" >&2
  exit 1
fi
