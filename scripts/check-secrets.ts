/**
 * After the whole suite (scripts/test.sh runs it after `node --test`): fails
 * when any secret the tests registered appears in the logs, responses or
 * Redis keys (job records included) they recorded, or in a key their
 * prefixes still hold. Also fails when the run recorded nothing, so a
 * harness that stopped recording cannot pass unnoticed.
 *
 *   node dist/scripts/check-secrets.js <run dir>
 */
import { Redis } from 'ioredis';
import {
  holdsCredentialsByDesign,
  masked,
  readPrefixes,
  readSecrets,
  scanRunDir,
  scanText,
} from '../test/support/secret-scan.js';
import { keysUnder, keyValue } from '../test/support/secrets.js';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: check-secrets <run dir>');
  process.exit(2);
}
const secrets = readSecrets(dir);
const scan = scanRunDir(dir, secrets);
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: true });
let leftover = 0;
try {
  await redis.connect();
  for (const prefix of readPrefixes(dir)) {
    for (const key of await keysUnder(redis, prefix)) {
      if (holdsCredentialsByDesign(key)) continue;
      const entry = await keyValue(redis, key);
      if (!entry) continue;
      leftover++;
      scan.findings.push(
        ...scanText(`${key} ${JSON.stringify(entry.value)}`, secrets, `redis ${key}`),
      );
    }
  }
} finally {
  redis.disconnect();
}
const { logs, responses, redis: keys } = scan.lines;
console.log(
  `secrets check: ${scan.secrets} secrets looked for in ${logs} log lines, ${responses} responses, ` +
    `${keys} Redis keys recorded and ${leftover} left behind`,
);
if (scan.secrets === 0 || logs === 0 || responses === 0) {
  console.error(
    'secrets check: the run recorded no secrets, logs or responses: is the recording broken?',
  );
  process.exit(1);
}
if (scan.findings.length > 0) {
  console.error(`secrets check: FAILED, ${scan.findings.length} leaks:`);
  for (const f of scan.findings.slice(0, 200)) console.error(`  ${masked(f)}`);
  process.exit(1);
}
console.log('secrets check: no secret found');
