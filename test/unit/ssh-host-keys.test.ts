/**
 * The host key rules of the SSH transport (src/libvirt/transport/host-keys.ts)
 * on keys and hashed names made by ssh-keygen (the constants below, with the
 * fingerprints `ssh-keygen -lf` printed for them), and the remote command
 * (ssh-command.ts) as the server's shell will read it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import {
  checkKnownHosts,
  decideHostKey,
  hostKeyFingerprint,
  hostKeyType,
  knownHostsName,
  parseKnownHosts,
} from '#src/libvirt/transport/host-keys.js';
import { remoteProxyCommand, shellQuote } from '#src/libvirt/transport/ssh-command.js';

const KEY_A = 'AAAAC3NzaC1lZDI1NTE5AAAAIMph1PphQN1UkJhEd0sGRxJZJgoioY0XvWF0EojDeLmh';
const FP_A = 'SHA256:KD2jcpzGYd9n9rAADHEffAtPi831qM+5+jEOin9so1Q';
const KEY_B = 'AAAAC3NzaC1lZDI1NTE5AAAAICOKTcDVg/xVs/Ubl6PKGSywb8XD2OqiVSp9e2Hc2rgp';
const FP_B = 'SHA256:BFXgyehlN3yeShKD+eNSQtCQ9CxJugLHvFQYX9t1kWU';
const BLOB_A = Buffer.from(KEY_A, 'base64');
const BLOB_B = Buffer.from(KEY_B, 'base64');
/** `ssh-keygen -H` of `example.org` and `[example.org]:2222`, both with key A. */
const HASHED_22 = `|1|TpEyxP6cVNt45FhcSjjdlm42HXw=|wdLJbMfkoTl8rbMqr4NTAtZMQBQ= ssh-ed25519 ${KEY_A}`;
const HASHED_2222 = `|1|94lma5IRvzdDEKgjsKfdJNk/m7A=|ui1+KZvj1D9OlqicDx8DtgF1elg= ssh-ed25519 ${KEY_A}`;

describe('host key fingerprints', () => {
  it('are what ssh-keygen -lf prints, and the type is the blob’s own', () => {
    assert.equal(hostKeyFingerprint(BLOB_A), FP_A);
    assert.equal(hostKeyFingerprint(BLOB_B), FP_B);
    assert.equal(hostKeyType(BLOB_A), 'ssh-ed25519');
    assert.equal(hostKeyType(Buffer.from([0, 0])), 'unknown');
  });
});

describe('known_hosts matching', () => {
  it('names a server as OpenSSH does: bare on port 22, [host]:port elsewhere', () => {
    assert.equal(knownHostsName('Example.ORG', 22), 'example.org');
    assert.equal(knownHostsName('127.0.0.1', 2222), '[127.0.0.1]:2222');
  });

  it('knows a plain entry, among comma-separated names, with comments and blank lines around', () => {
    const text = `# a comment\n\nother.org,example.org,10.0.0.1 ssh-ed25519 ${KEY_A} root@example\n`;
    assert.equal(checkKnownHosts(text, 'example.org', 22, BLOB_A), 'known');
    assert.equal(checkKnownHosts(text, '10.0.0.1', 22, BLOB_A), 'known');
    assert.equal(checkKnownHosts(text, 'example.net', 22, BLOB_A), 'unknown');
  });

  it('tells a port-22 entry from a [host]:port one', () => {
    const text = `[example.org]:2222 ssh-ed25519 ${KEY_A}\n`;
    assert.equal(checkKnownHosts(text, 'example.org', 2222, BLOB_A), 'known');
    assert.equal(checkKnownHosts(text, 'example.org', 22, BLOB_A), 'unknown');
    assert.equal(checkKnownHosts(text, 'example.org', 2223, BLOB_A), 'unknown');
  });

  it('says changed when the host is listed with another key (or another type)', () => {
    assert.equal(
      checkKnownHosts(`example.org ssh-ed25519 ${KEY_B}\n`, 'example.org', 22, BLOB_A),
      'changed',
    );
    assert.equal(
      checkKnownHosts(`example.org ssh-rsa ${KEY_A}\n`, 'example.org', 22, BLOB_A),
      'changed',
      'the same base64 under another type is not the key',
    );
    const both = `example.org ssh-ed25519 ${KEY_B}\nexample.org ssh-ed25519 ${KEY_A}\n`;
    assert.equal(checkKnownHosts(both, 'example.org', 22, BLOB_A), 'known');
  });

  it('matches hashed names made by ssh-keygen -H, for both name forms', () => {
    const text = `${HASHED_22}\n${HASHED_2222}\n`;
    assert.equal(checkKnownHosts(text, 'example.org', 22, BLOB_A), 'known');
    assert.equal(checkKnownHosts(text, 'example.org', 2222, BLOB_A), 'known');
    assert.equal(checkKnownHosts(text, 'example.net', 22, BLOB_A), 'unknown');
    assert.equal(checkKnownHosts(text, 'example.org', 22, BLOB_B), 'changed');
  });

  it('matches what ssh-keygen -F finds in a file it hashed itself', () => {
    const text = execFileSync('sh', [
      '-c',
      `d=$(mktemp -d); printf '[h.test]:2200 ssh-ed25519 ${KEY_B}\\n' >"$d/kh"; ` +
        `ssh-keygen -q -H -f "$d/kh" >/dev/null 2>&1; cat "$d/kh"; rm -rf "$d"`,
    ]).toString();
    assert.match(text, /^\|1\|/, 'ssh-keygen hashed the name');
    assert.equal(checkKnownHosts(text, 'h.test', 2200, BLOB_B), 'known');
    assert.equal(checkKnownHosts(text, 'h.test', 22, BLOB_B), 'unknown');
  });

  it('follows wildcards and negations', () => {
    const text = `*.example.org,!bad.example.org ssh-ed25519 ${KEY_A}\n`;
    assert.equal(checkKnownHosts(text, 'vm1.example.org', 22, BLOB_A), 'known');
    assert.equal(checkKnownHosts(text, 'bad.example.org', 22, BLOB_A), 'unknown');
  });

  it('refuses a key marked @revoked and ignores @cert-authority lines', () => {
    const revoked = `example.org ssh-ed25519 ${KEY_A}\n@revoked * ssh-ed25519 ${KEY_A}\n`;
    assert.equal(checkKnownHosts(revoked, 'example.org', 22, BLOB_A), 'revoked');
    const ca = `@cert-authority example.org ssh-ed25519 ${KEY_A}\n`;
    assert.equal(checkKnownHosts(ca, 'example.org', 22, BLOB_A), 'unknown');
    assert.equal(parseKnownHosts(ca)[0]!.marker, '@cert-authority');
  });

  it('skips malformed lines', () => {
    assert.deepEqual(parseKnownHosts('example.org ssh-ed25519\n# only\n   \n'), []);
  });
});

describe('host key decisions', () => {
  it('accepts a pinned fingerprint, padded or not', () => {
    assert.equal(decideHostKey({ hostKeyFingerprints: [FP_A] }, 'h', 22, BLOB_A).accepted, true);
    assert.equal(
      decideHostKey({ hostKeyFingerprints: [`${FP_A}=`] }, 'h', 22, BLOB_A).accepted,
      true,
    );
  });

  it('refuses another key than the pinned ones as changed, naming the offered fingerprint', () => {
    const d = decideHostKey({ hostKeyFingerprints: [FP_B] }, 'h', 22, BLOB_A);
    assert.equal(d.accepted, false);
    assert.ok(!d.accepted);
    assert.match(d.reason, /host key changed/);
    assert.ok(d.reason.includes(FP_A));
  });

  it('refuses an unknown host unless trusting on first use', () => {
    const d = decideHostKey({ knownHosts: `other ssh-ed25519 ${KEY_A}\n` }, 'h', 22, BLOB_A);
    assert.ok(!d.accepted);
    assert.match(d.reason, /host key not known/);
    assert.ok(d.reason.includes(FP_A));
    assert.equal(decideHostKey({ trustOnFirstUse: true }, 'h', 22, BLOB_A).accepted, true);
  });

  it('never trusts on first use a host known with another key, nor a revoked key', () => {
    const changed = decideHostKey(
      { knownHosts: `h ssh-ed25519 ${KEY_B}\n`, trustOnFirstUse: true },
      'h',
      22,
      BLOB_A,
    );
    assert.ok(!changed.accepted);
    assert.match(changed.reason, /host key changed/);
    const revoked = decideHostKey(
      { knownHosts: `@revoked * ssh-ed25519 ${KEY_A}\n`, hostKeyFingerprints: [FP_A] },
      'h',
      22,
      BLOB_A,
    );
    assert.ok(!revoked.accepted);
    assert.match(revoked.reason, /revoked/);
  });
});

describe('the remote proxy command', () => {
  /** What the server's shell makes of the command: sh -c's script, as words. */
  function script(command: string): string {
    return execFileSync('sh', [
      '-c',
      `eval "set -- $1"; printf '%s' "$3"`,
      'sh',
      command,
    ]).toString();
  }

  it('quotes so that the shell gets each value back as written', () => {
    for (const value of ["it's", 'a b', '$(rm -rf /)', '`x`', '"', '\\']) {
      assert.equal(
        execFileSync('sh', ['-c', `printf '%s' ${shellQuote(value)}`]).toString(),
        value,
      );
    }
  });

  it('runs nc -U on the socket for netcat, and virt-ssh-helper on the name for native', () => {
    const nc = script(
      remoteProxyCommand({ proxy: 'netcat', socketPath: "/run/it's sock", name: 'qemu:///system' }),
    );
    assert.match(nc, /'nc' \$ARG -U '\/run\/it'\\''s sock'$/);
    const native = script(
      remoteProxyCommand({ proxy: 'native', socketPath: '/s', name: 'qemu:///system' }),
    );
    assert.equal(native, "exec virt-ssh-helper 'qemu:///system'");
  });

  it('takes a netcat binary as netcat mode in auto, and refuses it with native', () => {
    const auto = script(
      remoteProxyCommand({ proxy: 'auto', netcat: '/opt/nc', socketPath: '/s', name: 'q' }),
    );
    assert.ok(!auto.includes('virt-ssh-helper'));
    assert.ok(auto.includes("'/opt/nc'"));
    assert.throws(
      () => remoteProxyCommand({ proxy: 'native', netcat: '/opt/nc', socketPath: '/s', name: 'q' }),
      /not valid with proxy=native/,
    );
  });
});
