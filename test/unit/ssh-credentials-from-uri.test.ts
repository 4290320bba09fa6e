/**
 * Credentials for a qemu+ssh:// URI used without a host layer
 * (sshCredentialsFromUri): which files and agent libvirt's rules pick, in a
 * home directory of the test's own.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { UriError, parseLibvirtUri, sshCredentialsFromUri } from '#src/libvirt/index.js';

describe('sshCredentialsFromUri', () => {
  let home = '';
  const uri = (query = ''): ReturnType<typeof parseLibvirtUri> =>
    parseLibvirtUri(`qemu+ssh://root@h.test/system${query}`);

  before(() => {
    home = mkdtempSync(path.join(os.tmpdir(), 'virtgate-home-'));
    mkdirSync(path.join(home, '.ssh'));
    writeFileSync(path.join(home, '.ssh', 'id_rsa'), 'RSA KEY TEXT');
    writeFileSync(path.join(home, '.ssh', 'id_ecdsa'), 'ECDSA KEY TEXT');
    writeFileSync(path.join(home, '.ssh', 'known_hosts'), 'h.test ssh-ed25519 AAAA\n');
    writeFileSync(path.join(home, 'other_key'), 'OTHER KEY TEXT');
  });
  after(() => rmSync(home, { recursive: true, force: true }));

  it('takes the first default key (ed25519, ecdsa, rsa), ~/.ssh/known_hosts and $SSH_AUTH_SOCK', () => {
    const c = sshCredentialsFromUri(uri(), { home, env: { SSH_AUTH_SOCK: '/tmp/agent.sock' } });
    assert.equal(c.privateKey, 'ECDSA KEY TEXT');
    assert.equal(c.knownHosts, 'h.test ssh-ed25519 AAAA\n');
    assert.equal(c.agentSocket, '/tmp/agent.sock');
    assert.equal(c.trustOnFirstUse, false);
  });

  it('takes keyfile= and known_hosts= over the defaults', () => {
    const kh = path.join(home, 'kh');
    writeFileSync(kh, 'other\n');
    const c = sshCredentialsFromUri(
      uri(`?keyfile=${path.join(home, 'other_key')}&known_hosts=${kh}`),
      { home, env: {} },
    );
    assert.equal(c.privateKey, 'OTHER KEY TEXT');
    assert.equal(c.knownHosts, 'other\n');
    assert.equal(c.agentSocket, undefined);
  });

  it('names the parameter and path of a file it cannot read', () => {
    assert.throws(
      () => sshCredentialsFromUri(uri('?keyfile=/nonexistent/key'), { home, env: {} }),
      (err: unknown) =>
        err instanceof UriError && /keyfile file \/nonexistent\/key: ENOENT/.test(err.message),
    );
    assert.throws(
      () => sshCredentialsFromUri(uri('?known_hosts=/nonexistent/kh'), { home, env: {} }),
      /known_hosts file \/nonexistent\/kh/,
    );
  });

  it('narrows to the methods sshauth= lists, and refuses a list with none it has', () => {
    const env = { SSH_AUTH_SOCK: '/tmp/agent.sock' };
    const agentOnly = sshCredentialsFromUri(uri('?sshauth=agent'), { home, env });
    assert.equal(agentOnly.privateKey, undefined);
    assert.equal(agentOnly.agentSocket, '/tmp/agent.sock');
    const keyOnly = sshCredentialsFromUri(uri('?sshauth=privkey,password'), { home, env });
    assert.equal(keyOnly.agentSocket, undefined);
    assert.equal(keyOnly.privateKey, 'ECDSA KEY TEXT');
    assert.throws(() => sshCredentialsFromUri(uri('?sshauth=password'), { home, env }), UriError);
  });

  it('trusts on first use with known_hosts_verify=auto and refuses ignore', () => {
    assert.equal(
      sshCredentialsFromUri(uri('?known_hosts_verify=auto'), { home, env: {} }).trustOnFirstUse,
      true,
    );
    assert.throws(
      () => sshCredentialsFromUri(uri('?known_hosts_verify=ignore'), { home, env: {} }),
      /not supported/,
    );
  });

  it('has no key and no known_hosts in an empty home', () => {
    const empty = mkdtempSync(path.join(os.tmpdir(), 'virtgate-empty-'));
    try {
      const c = sshCredentialsFromUri(uri(), { home: empty, env: {} });
      assert.equal(c.privateKey, undefined);
      assert.equal(c.knownHosts, undefined);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
