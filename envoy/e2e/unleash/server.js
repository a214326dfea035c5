// Starts Unleash (npm unleash-server) for the live tests (envoy/e2e/src/unleash.rs): PostgreSQL
// and the port from the environment, loopback only, an admin API token set up front so the test
// drives everything else (client tokens, flags) through the admin API.
'use strict';
const unleash = require('unleash-server');

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

unleash
  .start({
    db: {
      host: '127.0.0.1',
      port: Number(env('UNLEASH_DB_PORT')),
      user: env('UNLEASH_DB_USER'),
      password: 'unused',
      database: env('UNLEASH_DB_NAME'),
      ssl: false,
    },
    server: { host: '127.0.0.1', port: Number(env('UNLEASH_PORT')) },
    authentication: {
      type: 'open-source',
      enableApiToken: true,
      createAdminUser: false,
      initApiTokens: [
        { environment: '*', project: '*', secret: env('UNLEASH_ADMIN_TOKEN'), type: 'admin', tokenName: 'sluice-tests' },
      ],
    },
    // Offline: no version check, no telemetry.
    versionCheck: { enable: false },
    telemetry: false,
    logLevel: 'warn',
  })
  .then((instance) => {
    process.stdout.write(`unleash listening on ${instance.app.get('port') || env('UNLEASH_PORT')}\n`);
    const stop = () => instance.stop().then(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  })
  .catch((err) => {
    process.stderr.write(`unleash failed to start: ${err.stack || err}\n`);
    process.exit(1);
  });
