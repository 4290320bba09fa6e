/**
 * What a remote transport authenticates with, as contents (PEM text, key text),
 * never as paths: whoever builds these (the host layer, a bench) decides which
 * files may be read. Nothing here is ever logged or put in an error.
 */

/** x509 material for `qemu+tls://`: the CA that signs the server, our certificate and key. */
export interface TlsCredentials {
  /** PEM of the CA certificate(s) the server's certificate must chain to. */
  readonly ca: string;
  /** PEM of the client certificate the daemon checks (and matches against tls_allowed_dn_list). */
  readonly cert: string;
  /** PEM of the client certificate's private key. */
  readonly key: string;
  /** The key's passphrase, when it is encrypted. */
  readonly passphrase?: string;
  /**
   * Do not verify the server's certificate or name (libvirt's `no_verify=1`).
   * Only an admin sets this, explicitly, on a host; the host view says so.
   */
  readonly noVerify?: boolean;
}

/** What `qemu+ssh://` logs in with and how it knows the server is the right one. */
export interface SshCredentials {
  /** An OpenSSH or PEM private key. */
  readonly privateKey?: string;
  readonly passphrase?: string;
  /** Path of an ssh-agent socket to authenticate through instead of (or besides) a key. */
  readonly agentSocket?: string;
  /** Host key fingerprints accepted for the server, as OpenSSH prints them: `SHA256:<base64>`. */
  readonly hostKeyFingerprints?: readonly string[];
  /** The text of a known_hosts file (plain or hashed host names, `[host]:port` forms). */
  readonly knownHosts?: string;
  /**
   * Trust on first use: with no pinned fingerprint and no known_hosts entry for the
   * server, accept its key and report it through `onHostKey`. Only at an admin's
   * request, at registration.
   */
  readonly trustOnFirstUse?: boolean;
  /** Called with the server's host key fingerprint (`SHA256:…`) once it is accepted. */
  readonly onHostKey?: (fingerprint: string, keyType: string) => void;
}

export interface TransportCredentials {
  readonly tls?: TlsCredentials;
  readonly ssh?: SshCredentials;
}
