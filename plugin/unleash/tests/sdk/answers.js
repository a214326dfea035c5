// The reference side of the differential test (../sdk_differential.rs):
// Unleash's Node SDK, offline, bootstrapped with each payload, answers isEnabled and getVariant
// for every feature and context. Reads {"cases": [{payload, features, contexts}]} on stdin,
// writes {"hostname", "answers": [case][feature][context] = [enabled, variant, payload|null]}.
'use strict';
const os = require('os');
const { Unleash, InMemStorageProvider } = require('unleash-client');

async function answer(kase) {
  const unleash = new Unleash({
    appName: 'sluice-differential',
    // Nothing listens on port 9 and nothing is fetched: refreshInterval 0 never polls.
    url: 'http://127.0.0.1:9/api/',
    refreshInterval: 0,
    disableMetrics: true,
    skipInstanceCountWarning: true,
    storageProvider: new InMemStorageProvider(),
    bootstrap: { data: kase.payload.features || [], segments: kase.payload.segments || [] },
  });
  unleash.on('error', () => {});
  unleash.on('warn', () => {});
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the SDK did not load the bootstrapped payload')), 5000);
    unleash.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  const out = kase.features.map((name) =>
    kase.contexts.map((ctx) => {
      const context = { ...ctx };
      const enabled = unleash.isEnabled(name, context);
      const v = unleash.getVariant(name, context);
      return [enabled, v.name, v.payload ? [v.payload.type, String(v.payload.value)] : null];
    }),
  );
  unleash.destroy();
  return out;
}

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const answers = [];
  for (const kase of input.cases) answers.push(await answer(kase));
  process.stdout.write(JSON.stringify({ hostname: os.hostname(), answers }));
}

main().catch((err) => {
  process.stderr.write(`unleash-client reference failed: ${err.stack || err}\n`);
  process.exit(1);
});
