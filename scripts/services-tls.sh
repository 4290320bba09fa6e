# shellcheck shell=bash
# libvirtd's TLS listener for scripts/services.sh (sourced by it): a test PKI made with
# openssl under $PKI_DIR and the libvirtd.conf lines that use it.
#
# $PKI_DIR is in libvirt's `pkipath` layout for the client (cacert.pem, clientcert.pem,
# clientkey.pem: qemu+tls://localhost:$LIBVIRT_TLS_PORT/system?pkipath=$PKI_DIR works as
# is), and holds the cases tests refuse, each a pkipath directory of its own:
#   other-ca/  a CA that did not sign the server, and a client certificate it signed
#   expired/   a client certificate of our CA whose validity ended in 2020
#   stranger/  a client certificate of our CA whose DN the daemon does not allow
# The server's certificate names `localhost` only (no IP address), so 127.0.0.1 is a name
# mismatch. Private keys are 0600; the CA's key never leaves $PKI_DIR/ca.

LIBVIRT_TLS_PORT="${LIBVIRT_TLS_PORT:-16514}"
PKI_DIR="$STATE_DIR/pki"
TLS_CLIENT_DN="CN=virtgate-client,O=virtgate"

libvirt_tls_ok() {
  virsh -q -c "qemu+tls://localhost:$LIBVIRT_TLS_PORT/system?pkipath=$PKI_DIR" version >/dev/null 2>&1
}

# A CA of its own in $1 (cakey.pem, cacert.pem), valid ten years.
make_ca() {
  local dir="$1" cn="$2"
  mkdir -p "$dir"
  chmod 0700 "$dir"
  openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 -subj "/O=virtgate/CN=$cn" \
    -keyout "$dir/cakey.pem" -out "$dir/cacert.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    >>"$PKI_DIR/openssl.log" 2>&1
}

# A key and a certificate signed by the CA in $1: `leaf CA_DIR OUT_KEY OUT_CERT SUBJECT EXT [START END]`.
# START and END (YYYYMMDDHHMMSSZ) make a certificate valid only then; `openssl ca` is the
# tool that takes both, so it signs every leaf, from a throwaway database per CA.
leaf() {
  local ca="$1" key="$2" cert="$3" subject="$4" ext="$5" start="${6:-}" end="${7:-}"
  local csr="$cert.csr" conf="$ca/openssl-ca.cnf"
  if [ ! -f "$conf" ]; then
    mkdir -p "$ca/newcerts"
    : >"$ca/index.txt"
    openssl rand -hex 8 >"$ca/serial"
    cat >"$conf" <<EOF
[ca]
default_ca = test_ca
[test_ca]
dir = $ca
database = \$dir/index.txt
new_certs_dir = \$dir/newcerts
serial = \$dir/serial
certificate = \$dir/cacert.pem
private_key = \$dir/cakey.pem
default_md = sha256
default_days = 3650
policy = anything
unique_subject = no
copy_extensions = none
[anything]
commonName = supplied
organizationName = optional
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
EOF
  fi
  openssl req -new -newkey rsa:2048 -nodes -subj "$subject" -keyout "$key" -out "$csr" \
    >>"$PKI_DIR/openssl.log" 2>&1
  chmod 0600 "$key"
  local dates=()
  [ -n "$start" ] && dates=(-startdate "$start" -enddate "$end")
  openssl ca -batch -config "$conf" -extensions "$ext" -notext "${dates[@]}" \
    -in "$csr" -out "$cert" >>"$PKI_DIR/openssl.log" 2>&1
  rm -f "$csr"
}

# The test PKI, made once: a complete one is kept as it is (its certificates last ten years).
ensure_test_pki() {
  [ -f "$PKI_DIR/complete" ] && return 0
  rm -rf "$PKI_DIR"
  mkdir -p "$PKI_DIR/server" "$PKI_DIR/other-ca" "$PKI_DIR/expired" "$PKI_DIR/stranger"
  : >"$PKI_DIR/openssl.log"
  make_ca "$PKI_DIR/ca" "virtgate test CA"
  cp "$PKI_DIR/ca/cacert.pem" "$PKI_DIR/cacert.pem"
  leaf "$PKI_DIR/ca" "$PKI_DIR/server/serverkey.pem" "$PKI_DIR/server/servercert.pem" \
    "/O=virtgate/CN=localhost" server
  leaf "$PKI_DIR/ca" "$PKI_DIR/clientkey.pem" "$PKI_DIR/clientcert.pem" \
    "/O=virtgate/CN=virtgate-client" client
  leaf "$PKI_DIR/ca" "$PKI_DIR/expired/clientkey.pem" "$PKI_DIR/expired/clientcert.pem" \
    "/O=virtgate/CN=virtgate-client" client 20200101000000Z 20200102000000Z
  cp "$PKI_DIR/cacert.pem" "$PKI_DIR/expired/cacert.pem"
  leaf "$PKI_DIR/ca" "$PKI_DIR/stranger/clientkey.pem" "$PKI_DIR/stranger/clientcert.pem" \
    "/O=virtgate/CN=stranger" client
  cp "$PKI_DIR/cacert.pem" "$PKI_DIR/stranger/cacert.pem"
  make_ca "$PKI_DIR/other-ca/ca" "virtgate other CA"
  cp "$PKI_DIR/other-ca/ca/cacert.pem" "$PKI_DIR/other-ca/cacert.pem"
  leaf "$PKI_DIR/other-ca/ca" "$PKI_DIR/other-ca/clientkey.pem" "$PKI_DIR/other-ca/clientcert.pem" \
    "/O=virtgate/CN=virtgate-client" client
  chmod 0755 "$PKI_DIR" "$PKI_DIR/other-ca" "$PKI_DIR/expired" "$PKI_DIR/stranger"
  chmod 0700 "$PKI_DIR/server"
  touch "$PKI_DIR/complete"
  say "tls: test PKI made in $PKI_DIR"
}

# libvirtd.conf lines for the listener. tls_allowed_dn_list holds the client's DN as gnutls
# prints it (RFC 4514 order: CN first); the daemon checks the certificate, its dates and
# this list, and hangs up on a client that fails them.
tls_libvirtd_conf() {
  cat <<EOF
listen_tls = 1
tls_port = "$LIBVIRT_TLS_PORT"
auth_tls = "none"
ca_file = "$PKI_DIR/cacert.pem"
cert_file = "$PKI_DIR/server/servercert.pem"
key_file = "$PKI_DIR/server/serverkey.pem"
tls_allowed_dn_list = ["$TLS_CLIENT_DN"]
EOF
}
