/**
 * Where scripts/services.sh keeps what tests of remote transports need: the test
 * CA and certificates of the TLS listener, the sshd's keys, the session daemon's
 * socket. One place, so tests and benches agree with the script.
 */
import path from 'node:path';

export const SERVICES_DIR = process.env.VIRTGATE_SERVICES_DIR ?? '/var/lib/virtgate-services';

/** libvirtd's TLS listener on loopback; its server certificate names `localhost` only. */
export const TLS_PORT = Number(process.env.LIBVIRT_TLS_PORT ?? 16514);
/**
 * The test PKI, in libvirt's `pkipath` layout (cacert.pem, clientcert.pem,
 * clientkey.pem), plus the certificates for refusals in sub-directories.
 */
export const PKI_DIR = path.join(SERVICES_DIR, 'pki');

/** The local sshd on loopback, its host keys and the client keys it accepts. */
export const SSH_PORT = Number(process.env.VIRTGATE_SSH_PORT ?? 2222);
export const SSH_DIR = path.join(SERVICES_DIR, 'ssh');

/** The second QEMU daemon: libvirtd in session mode, run as an unprivileged user. */
export const SESSION_DIR = path.join(SERVICES_DIR, 'session');
export const SESSION_SOCKET = path.join(SESSION_DIR, 'run', 'libvirt', 'libvirt-sock');
export const SESSION_URI = `qemu:///session?socket=${SESSION_SOCKET}`;
