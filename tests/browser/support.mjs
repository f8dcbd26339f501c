// What every browser test needs: a real `nightshift serve` on an ephemeral
// port with its own data dir and workspace, and a headless Chromium from the
// system (never downloaded) driven by playwright-core.

import {spawn} from 'node:child_process';
import {mkdtempSync, mkdirSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {once} from 'node:events';
import {chromium} from 'playwright-core';

export const config = {
  hostBinary: requireEnv('NIGHTSHIFT_BIN'),
  agentsDir: requireEnv('NIGHTSHIFT_AGENTS_DIR'),
  // More installed agents for the tests (e.g. runs-listener, which takes messages).
  extraAgentsDir: process.env.NIGHTSHIFT_EXTRA_AGENTS_DIR || '',
  screenshotDir: process.env.NIGHTSHIFT_SCREENSHOT_DIR || join(tmpdir(), 'nightshift-browser-screenshots'),
  chromium: process.env.NIGHTSHIFT_CHROMIUM || '/usr/bin/chromium',
};

function requireEnv(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; run the browser tests through ctest, which sets it`);
  return value;
}

export function makeTempDir(prefix) {
  return mkdtempSync(join(tmpdir(), `nightshift-browser-${prefix}-`));
}

// A running host. `start` resolves once it printed its panel URL.
export class Host {
  constructor({dataDir, workspace, listen = '127.0.0.1:0'}) {
    this.dataDir = dataDir;
    this.workspace = workspace;
    this.listen = listen;
    this.process = null;
    this.output = '';
  }

  async start() {
    const child = spawn(config.hostBinary,
      ['serve', '--listen', this.listen, '--data-dir', this.dataDir, '--workspace', this.workspace,
       ...(config.extraAgentsDir ? ['--agents-dir', config.extraAgentsDir] : [])],
      {stdio: ['ignore', 'pipe', 'pipe']});
    this.process = child;
    child.stderr.on('data', (chunk) => { this.output += chunk; });
    const panelLine = new Promise((resolve, reject) => {
      let buffered = '';
      child.stdout.on('data', (chunk) => {
        this.output += chunk;
        buffered += chunk;
        const match = buffered.match(/^panel: (http:\/\/\S+)$/m);
        if (match) resolve(match[1]);
      });
      child.on('exit', (code, signal) => reject(new Error(
        `nightshift serve exited (${code ?? signal}) before printing the panel URL:\n${this.output}`)));
    });
    const timeout = new Promise((_, reject) => {
      setTimeout(() => reject(new Error(`nightshift serve printed no panel URL within 15 s:\n${this.output}`)), 15000).unref();
    });
    this.panelUrl = await Promise.race([panelLine, timeout]);
    const url = new URL(this.panelUrl);
    this.origin = url.origin;
    this.token = url.searchParams.get('token');
    this.port = url.port;
    return this;
  }

  // Graceful stop (SIGTERM), as a service manager would.
  async stop() {
    const child = this.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 20000);
    await exited;
    clearTimeout(timer);
    this.process = null;
  }

  async api(method, path, body) {
    const response = await fetch(`${this.origin}${path}`, {
      method,
      headers: {Authorization: `Bearer ${this.token}`, 'Content-Type': 'application/json'},
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }
}

export async function launchBrowser() {
  const userDataDir = makeTempDir('chromium-profile');
  // A persistent context is the way to give Chromium its own fresh profile dir.
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: config.chromium,
    headless: true,
    viewport: {width: 1280, height: 800},
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const errors = [];
  context.on('weberror', (error) => errors.push(String(error.error())));
  return {
    context,
    errors,
    async close() {
      await context.close();
      rmSync(userDataDir, {recursive: true, force: true});
    },
  };
}

export async function screenshot(page, name) {
  mkdirSync(config.screenshotDir, {recursive: true});
  await page.screenshot({path: join(config.screenshotDir, `${name}.png`), fullPage: true});
}
