// The Background Agents panel in a real Chromium against a real host.

import {after, before, describe, test} from 'node:test';
import assert from 'node:assert/strict';
import {cpSync, mkdirSync, rmSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';
import {Host, config, launchBrowser, makeTempDir, screenshot} from './support.mjs';

const WAIT = {timeout: 15000};

async function openPanelThroughMenu(page, host) {
  await page.goto(host.panelUrl);
  await page.getByTestId('execution-menu').click();
  await page.getByRole('menuitem', {name: 'Background Agents'}).click();
  await page.getByRole('heading', {name: 'Background Agents', level: 1}).waitFor(WAIT);
  await waitForConnection(page, 'live');
}

async function waitForConnection(page, state) {
  await page.waitForSelector(`[data-testid="connection-state"][data-state="${state}"]`, WAIT);
}

function rowByTask(page, listTestId, task) {
  return page.getByTestId(listTestId).getByTestId('run-row').filter({hasText: task});
}

async function waitForStatus(row, status) {
  await row.locator(`[data-testid="run-status"]:text-is("${status}")`).waitFor(WAIT);
}

async function startFromDialog(page, agentId, task, params = {}) {
  await page.getByTestId('start-button').click();
  const dialog = page.getByTestId('start-dialog');
  await dialog.locator(`[data-agent-id="${agentId}"]`).click();
  if (task) await dialog.getByTestId('start-task').fill(task);
  for (const [name, value] of Object.entries(params)) {
    await dialog.locator(`[data-param="${name}"] input`).fill(String(value));
  }
  await dialog.getByTestId('start-submit').click();
  await dialog.waitFor({state: 'hidden', ...WAIT});
}

describe('Background Agents panel', () => {
  let host;
  let browser;
  let page;
  const dirs = [];

  before(async () => {
    const workspace = makeTempDir('workspace');
    const dataDir = makeTempDir('data');
    dirs.push(workspace, dataDir);
    // A remix and a local agent, so the Start dialog has every kind.
    mkdirSync(join(workspace, '.nightshift', 'remix'), {recursive: true});
    writeFileSync(join(workspace, '.nightshift', 'remix', 'quick-nap.md'),
      '---\ndescription: A two-second sleep.\nbase: installed:sleep\nparams:\n  seconds: 2\n---\nNap briefly.\n');
    cpSync(join(config.agentsDir, 'echo'), join(workspace, '.nightshift', 'agents', 'echo'), {recursive: true});
    host = await new Host({dataDir, workspace}).start();
    browser = await launchBrowser();
  });

  after(async () => {
    if (browser) await browser.close();
    if (host) await host.stop();
    for (const dir of dirs) rmSync(dir, {recursive: true, force: true});
  });

  test('the Execution menu opens the panel and the token leaves the address bar', async () => {
    page = await browser.context.newPage();
    await openPanelThroughMenu(page, host);
    const url = new URL(page.url());
    assert.equal(url.searchParams.get('token'), null);
    assert.equal(url.hash, '#/background-agents');
    await screenshot(page, 'menu-opens-panel');
  });

  test('a started sleep shows in Active at once, streams ticks, and a stop moves it to History as cancelled', async () => {
    await startFromDialog(page, 'installed:sleep', 'nap for the browser test', {seconds: 30});
    const active = rowByTask(page, 'active-list', 'nap for the browser test');
    await active.waitFor(WAIT);
    await active.getByTestId('toggle-logs').click();
    await active.getByTestId('log-entry').filter({hasText: 'tick 1/30'}).waitFor(WAIT);
    await active.getByTestId('log-entry').filter({hasText: 'tick 2/30'}).waitFor(WAIT);
    await active.getByTestId('run-progress').waitFor(WAIT);
    await screenshot(page, 'sleep-running-with-log');

    await active.getByTestId('stop-run').click();
    const history = rowByTask(page, 'history-list', 'nap for the browser test');
    await waitForStatus(history, 'cancelled');
    assert.equal(await active.count(), 0);
    await screenshot(page, 'sleep-cancelled-in-history');
    // Time, duration and host stay in their column: they fit, or what does
    // not is clipped there (with an ellipsis) instead of running under the task.
    const when = await history.locator('.when').evaluate((node) => ({
      text: node.textContent, overflows: node.scrollWidth > node.clientWidth,
      clipped: getComputedStyle(node).overflowX === 'hidden' && getComputedStyle(node).textOverflow === 'ellipsis',
    }));
    assert.ok(!when.overflows || when.clipped, `'${when.text}' runs out of its column`);
  });

  test('a message typed under an active run reaches its agent and shows as yours in the log', async () => {
    await startFromDialog(page, 'installed:runs-listener', 'listen for the browser test');
    const active = rowByTask(page, 'active-list', 'listen for the browser test');
    await active.waitFor(WAIT);
    await active.getByTestId('toggle-logs').click();
    await active.getByTestId('log-entry').filter({hasText: 'listening'}).waitFor(WAIT);
    await active.getByTestId('message-input').fill('look at src/ first');
    await active.getByTestId('send-message').click();
    await active.getByTestId('log-entry').filter({hasText: 'heard: look at src/ first'}).waitFor(WAIT);
    const mine = active.locator('[data-testid="log-entry"][data-source="user"]');
    assert.equal(await mine.count(), 1);
    assert.match(await mine.textContent(), /look at src\/ first/);
    assert.equal(await active.getByTestId('message-input').inputValue(), '');
    await active.getByTestId('run-usage').filter({hasText: '11 tokens'}).waitFor(WAIT);
    // Its own process (its manifest does not ask for a thread).
    assert.equal(await active.getByTestId('run-isolation').textContent(), 'process');
    await screenshot(page, 'message-sent-to-a-running-agent');
    await active.getByTestId('stop-run').click();
    const history = rowByTask(page, 'history-list', 'listen for the browser test');
    await waitForStatus(history, 'cancelled');
  });

  test('a failing run shows its error in History', async () => {
    await startFromDialog(page, 'installed:sleep', 'this one fails', {seconds: 1, failWith: 'the disk is on fire'});
    const history = rowByTask(page, 'history-list', 'this one fails');
    await waitForStatus(history, 'failed');
    await history.getByTestId('run-error').filter({hasText: 'the disk is on fire'}).waitFor(WAIT);
    assert.equal(await history.getByTestId('run-isolation').textContent(), 'thread');
    assert.equal(await history.getByTestId('run-error-kind').isVisible(), false);
    await screenshot(page, 'failed-run-error');
  });

  test('the Start dialog lists installed, remix and local agents under their kinds', async () => {
    await page.getByTestId('start-button').click();
    const dialog = page.getByTestId('start-dialog');
    await dialog.getByTestId('agent-group-installed').locator('[data-agent-id="installed:sleep"]').waitFor(WAIT);
    const remix = dialog.getByTestId('agent-group-remix').locator('[data-agent-id="remix:quick-nap"]');
    await remix.waitFor(WAIT);
    assert.match(await remix.innerText(), /A two-second sleep/);
    await dialog.getByTestId('agent-group-local').locator('[data-agent-id="local:echo"]').waitFor(WAIT);
    await remix.click();
    await dialog.locator('[data-param="seconds"]').waitFor(WAIT);
    await screenshot(page, 'start-dialog-kinds');
    await page.keyboard.press('Escape');
    await dialog.waitFor({state: 'hidden', ...WAIT});
  });

  test('history filters by status and deletes a run', async () => {
    await page.getByTestId('filter-status').selectOption('failed');
    const list = page.getByTestId('history-list');
    await list.getByTestId('run-row').filter({hasText: 'this one fails'}).waitFor(WAIT);
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="history-list"] [data-testid="run-row"]')]
      .every((row) => row.dataset.status === 'failed'), null, WAIT);
    const failed = list.getByTestId('run-row').filter({hasText: 'this one fails'});
    await failed.getByTestId('delete-run').click();
    await failed.waitFor({state: 'detached', ...WAIT});
    await page.getByTestId('filter-status').selectOption('');
    await rowByTask(page, 'history-list', 'nap for the browser test').waitFor(WAIT);
  });

  test('Run again on a run in History starts it again with the same task', async () => {
    const finished = rowByTask(page, 'history-list', 'nap for the browser test').first();
    await finished.getByTestId('rerun-run').click();
    const again = rowByTask(page, 'active-list', 'nap for the browser test');
    await again.waitFor(WAIT);
    await again.getByTestId('run-origin').filter({hasText: 're-run'}).waitFor(WAIT);
    await screenshot(page, 'run-again');
    await again.getByTestId('stop-run').click();
    await again.waitFor({state: 'detached', ...WAIT});
    // Only the first run stays in History for the tests after this one.
    const rerun = rowByTask(page, 'history-list', 'nap for the browser test')
      .filter({has: page.getByTestId('run-origin').filter({hasText: 're-run'})});
    await waitForStatus(rerun, 'cancelled');
    await rerun.getByTestId('delete-run').click();
    await rerun.waitFor({state: 'detached', ...WAIT});
  });

  test('the Schedules view creates a schedule from the Start form, disables, runs and deletes it', async () => {
    await page.getByTestId('execution-menu').click();
    await page.getByRole('menuitem', {name: 'Schedules'}).click();
    await page.getByRole('heading', {name: 'Schedules', level: 1}).waitFor(WAIT);
    await page.getByTestId('new-schedule').click();
    const dialog = page.getByTestId('schedule-dialog');
    await dialog.getByTestId('schedule-cron').fill('30 2 * * *');
    await dialog.getByTestId('schedule-timezone').fill('Europe/Berlin');
    await dialog.locator('[data-agent-id="installed:echo"]').click();
    await dialog.getByTestId('schedule-task').fill('scheduled by the browser test');
    await dialog.getByTestId('schedule-submit').click();
    await dialog.waitFor({state: 'hidden', ...WAIT});
    const row = page.getByTestId('schedule-row').filter({hasText: 'scheduled by the browser test'});
    await row.waitFor(WAIT);
    assert.match(await row.innerText(), /Europe\/Berlin/);
    await row.getByTestId('schedule-next').locator('time').waitFor(WAIT);
    await screenshot(page, 'schedules-view');
    // The buttons' cell is as tall as its row (the task makes the row two
    // lines), so the row's border runs straight under it.
    const rowBox = await row.boundingBox();
    const actionsBox = await row.locator('td.actions').boundingBox();
    assert.ok(Math.abs(actionsBox.y + actionsBox.height - (rowBox.y + rowBox.height)) < 1,
              `the actions cell ends at ${actionsBox.y + actionsBox.height}, its row at ${rowBox.y + rowBox.height}`);
    await row.getByTestId('schedule-toggle').click();
    await page.locator('[data-testid="schedule-row"][data-enabled="false"]').waitFor(WAIT);
    assert.equal(await row.getByTestId('schedule-next').locator('time').count(), 0);
    await row.getByTestId('schedule-trigger').click();
    await page.getByTestId('toast').filter({hasText: 'Started echo'}).waitFor(WAIT);
    await row.getByTestId('schedule-delete').click();
    await row.waitFor({state: 'detached', ...WAIT});
  });

  test('the Webhooks view adds a webhook and shows its deliveries', async () => {
    await page.getByTestId('execution-menu').click();
    await page.getByRole('menuitem', {name: 'Webhooks'}).click();
    await page.getByRole('heading', {name: 'Webhooks', level: 1}).waitFor(WAIT);
    await page.getByTestId('webhook-url').fill('http://127.0.0.1:9/nobody-listens');
    await page.getByTestId('webhook-secret').fill('browser-secret');
    await page.getByTestId('webhook-submit').click();
    const card = page.getByTestId('webhook-card').filter({hasText: 'nobody-listens'});
    await card.waitFor(WAIT);
    assert.doesNotMatch(await page.content(), /browser-secret/);
    await page.goto(`${host.panelUrl}#/background-agents`);
    await waitForConnection(page, 'live');
    await startFromDialog(page, 'installed:echo', 'a run for the webhook');
    await waitForStatus(rowByTask(page, 'history-list', 'a run for the webhook'), 'completed');
    await page.goto(`${host.panelUrl}#/webhooks`);
    await card.getByTestId('webhook-deliveries').click();
    await card.getByTestId('delivery-row').first().waitFor(WAIT);
    assert.match(await card.getByTestId('delivery-row').first().innerText(), /run\.finished/);
    await screenshot(page, 'webhooks-view');
    await card.getByTestId('webhook-delete').click();
    await card.waitFor({state: 'detached', ...WAIT});
    await page.goto(`${host.panelUrl}#/background-agents`);
    await waitForConnection(page, 'live');
  });

  test('a narrow dark screen stays readable', async () => {
    const narrow = await browser.context.newPage();
    await narrow.setViewportSize({width: 360, height: 740});
    await narrow.emulateMedia({colorScheme: 'dark'});
    await narrow.goto(`${host.panelUrl}#/background-agents`);
    await waitForConnection(narrow, 'live');
    await rowByTask(narrow, 'history-list', 'nap for the browser test').waitFor(WAIT);
    const overflow = await narrow.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow} px wider than a 360 px screen`);
    await screenshot(narrow, 'narrow-dark');
    await narrow.close();
  });

  test('from 360 to 1400 px wide, every run shows its agent\'s whole name and where it came from and keeps room for its task, and on a phone when it ran', async () => {
    const sized = await browser.context.newPage();
    await sized.goto(`${host.panelUrl}#/background-agents`);
    await waitForConnection(sized, 'live');
    await rowByTask(sized, 'history-list', 'listen for the browser test').waitFor(WAIT);
    // A re-run of an ended run: the same agent, task and buttons, and a
    // "re-run" label, which takes no room from its task.
    const original = (await host.api('GET', '/background-agents')).history
      .find((run) => run.task === 'nap for the browser test');
    assert.ok(original, 'the nap is in History');
    const rerun = await host.api('POST', `/background-agents/${original.instanceId}/rerun`, {});
    await host.api('POST', `/background-agents/${rerun.instanceId}/stop`);
    const rerunRow = sized.locator(`[data-testid="history-list"] [data-run-id="${rerun.instanceId}"]`);
    await rerunRow.getByTestId('run-origin').filter({hasText: 're-run'}).waitFor(WAIT);
    for (const width of [1400, 1200, 1100, 900, 800, 600, 420, 360]) {
      await sized.setViewportSize({width, height: 800});
      const rows = await sized.getByTestId('run-row').evaluateAll((nodes) => nodes.map((row) => {
        const name = row.querySelector('[data-testid="run-agent"]');
        const task = row.querySelector('.task');
        const origin = row.querySelector('[data-testid="run-origin"]');
        const originCut = !origin.hidden &&
          origin.getBoundingClientRect().right > row.querySelector('.agent').getBoundingClientRect().right + 0.5;
        const when = row.querySelector('.when');
        return {id: row.dataset.runId, agent: name.textContent, nameCut: name.scrollWidth > name.clientWidth, originCut,
                when: when.textContent, whenCut: when.scrollWidth > when.clientWidth,
                taskWidth: task.getBoundingClientRect().width,
                columns: getComputedStyle(row.querySelector('.run-summary')).gridTemplateColumns};
      }));
      assert.ok(rows.length >= 3, `${rows.length} rows at ${width} px`);
      for (const row of rows) {
        assert.ok(!row.nameCut, `'${row.agent}' is cut at ${width} px`);
        assert.ok(!row.originCut, `the origin of a '${row.agent}' run is cut at ${width} px`);
        // On a phone the buttons have a line of their own, so that the name,
        // the origin and the times are not cut. (In the wider layouts the
        // times share a column with the host's name, which a long one
        // overflows into an ellipsis.)
        if (width <= 520) assert.ok(!row.whenCut, `'${row.when}' of a '${row.agent}' run is cut at ${width} px`);
        assert.ok(row.taskWidth >= 160, `the task of a '${row.agent}' run is ${row.taskWidth} px wide at ${width} px (${row.columns})`);
      }
      const widthOf = (id) => rows.find((row) => row.id === id).taskWidth;
      assert.ok(Math.abs(widthOf(rerun.instanceId) - widthOf(original.instanceId)) < 1,
        `at ${width} px the re-run's task is ${widthOf(rerun.instanceId)} px wide, its original's ${widthOf(original.instanceId)} px`);
    }
    await screenshot(sized, 'rows-at-800-px');
    await sized.close();
  });

  test('no script errors on the page', () => {
    assert.deepEqual(browser.errors, []);
  });
});

describe('Background Agents panel, token and restarts', () => {
  test('a wrong token shows the token prompt, and pasting the right one opens the panel', async () => {
    const dataDir = makeTempDir('data');
    const workspace = makeTempDir('workspace');
    const host = await new Host({dataDir, workspace}).start();
    const browser = await launchBrowser();
    try {
      const page = await browser.context.newPage();
      await page.goto(`${host.origin}/?token=not-the-token#/background-agents`);
      const prompt = page.getByTestId('token-prompt');
      await prompt.waitFor(WAIT);
      assert.match(await page.getByTestId('token-reason').innerText(), /401/);
      await screenshot(page, 'bad-token-prompt');
      await page.getByTestId('token-input').fill(host.token);
      await page.getByTestId('token-submit').click();
      await page.getByRole('heading', {name: 'Background Agents', level: 1}).waitFor(WAIT);
      await waitForConnection(page, 'live');
    } finally {
      await browser.close();
      await host.stop();
      rmSync(dataDir, {recursive: true, force: true});
      rmSync(workspace, {recursive: true, force: true});
    }
  });

  test('after the host restarts the panel reconnects and shows the same history', async () => {
    const dataDir = makeTempDir('data');
    const workspace = makeTempDir('workspace');
    let host = await new Host({dataDir, workspace}).start();
    const browser = await launchBrowser();
    try {
      const before = await host.api('POST', '/background-agents/start', {agentId: 'installed:echo', task: 'remember me'});
      const page = await browser.context.newPage();
      await page.goto(`${host.panelUrl}#/background-agents`);
      await waitForStatus(rowByTask(page, 'history-list', 'remember me'), 'completed');

      const port = host.port;
      await host.stop();
      await page.waitForSelector('[data-testid="connection-state"]:not([data-state="live"])', WAIT);
      await screenshot(page, 'host-down');
      host = await new Host({dataDir, workspace, listen: `127.0.0.1:${port}`}).start();
      await waitForConnection(page, 'live');
      const row = rowByTask(page, 'history-list', 'remember me');
      await waitForStatus(row, 'completed');
      assert.equal(await row.getAttribute('data-run-id'), before.instanceId);

      // Live again: a run started now shows without a reload.
      await host.api('POST', '/background-agents/start', {agentId: 'installed:echo', task: 'after the restart'});
      await waitForStatus(rowByTask(page, 'history-list', 'after the restart'), 'completed');
      await screenshot(page, 'after-restart');
      assert.deepEqual(browser.errors, []);
    } finally {
      await browser.close();
      await host.stop();
      rmSync(dataDir, {recursive: true, force: true});
      rmSync(workspace, {recursive: true, force: true});
    }
  });
});
