// The wallboard in a real browser (Debian's Chromium, headless, driven by
// playwright-core; no browser is downloaded). The test starts `callwatch run` on free
// ports with a small roster and a 3 s late-answer threshold, plays a scripted HEP feed,
// and checks what a person on the floor would see: a ringing call with a running timer
// that turns amber then red, the violation in the ticker, agents' states, the service
// level moving as expected, English on the switch, the stale banner when the daemon
// goes away and a resync when a new run comes back; and that no full customer number is
// in the DOM or in any websocket frame. The browser's wall clock is set five hours
// wrong on purpose: timers must run on performance.now(), not on Date.
// Screenshots: target/browser-artifacts/.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { Call, Feed } = require('./hep');

const ROOT = path.resolve(__dirname, '../..');
const BIN = process.env.CALLWATCH_BIN || path.join(ROOT, 'target/debug/callwatch');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.join(ROOT, 'target/browser-artifacts');
const THRESHOLD_MS = 3000;
const NUMBERS = ['13812345678', '13900001111', '15011112222'];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Starts `callwatch run`; resolves with its addresses once it says where it listens. */
function startDaemon(dir, httpListen) {
  const env = {
    ...process.env,
    RUST_LOG: 'warn',
    CALLWATCH__CAPTURE__HEP_LISTEN: '127.0.0.1:0',
    CALLWATCH__HTTP__LISTEN: httpListen,
    CALLWATCH__RULES__LATE_ANSWER__THRESHOLD_MS: String(THRESHOLD_MS),
    CALLWATCH__AGENTS__ROSTER: path.join(__dirname, 'roster.csv'),
    CALLWATCH__STORE__URL: `sqlite://${dir}/callwatch.db`,
  };
  const child = spawn(BIN, ['run'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon did not start:\n${err}`)), 30000);
    child.stderr.on('data', (d) => {
      err += d.toString();
      const m = /HEP on 127\.0\.0\.1:(\d+) .*metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({ child, hep: Number(m[1]), http: Number(m[2]), log: () => err });
      }
    });
    child.on('exit', (code) => reject(new Error(`daemon exited (${code}):\n${err}`)));
  });
}

function stopDaemon(d) {
  return new Promise((resolve) => {
    if (d.child.exitCode !== null) return resolve();
    d.child.once('exit', () => resolve());
    d.child.kill('SIGTERM');
    setTimeout(() => d.child.kill('SIGKILL'), 10000).unref();
  });
}

async function until(what, fn, timeoutMs = 10000) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${last})`);
    await sleep(100);
  }
}

function assertNoFullNumber(text, where) {
  for (const n of NUMBERS) assert.ok(!text.includes(n), `full customer number ${n} in ${where}`);
}

test('the wallboard in a real browser', { timeout: 180000 }, async (t) => {
  assert.ok(fs.existsSync(BIN), `${BIN} missing: build it first (cargo build --bin callwatch)`);
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} missing: apt-get install chromium`);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'callwatch-browser-'));
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'callwatch-chromium-'));
  let daemon = await startDaemon(dir, '127.0.0.1:0');
  const httpPort = daemon.http;
  let feed = new Feed(daemon.hep);
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1920, height: 1080 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  t.after(async () => {
    await ctx.close().catch(() => {});
    feed.close();
    await stopDaemon(daemon);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(profile, { recursive: true, force: true });
  });
  const page = ctx.pages()[0] || (await ctx.newPage());
  // The browser's wall clock is five hours off: a timer computed from Date against a
  // server timestamp would show hours.
  await page.addInitScript(() => {
    const RealDate = Date;
    const off = 5 * 3600 * 1000;
    class SkewedDate extends RealDate {
      constructor(...a) {
        if (a.length === 0) super(RealDate.now() + off);
        else super(...a);
      }
      static now() {
        return RealDate.now() + off;
      }
    }
    window.Date = SkewedDate;
  });
  const frames = [];
  page.on('websocket', (ws) => ws.on('framereceived', (f) => frames.push(String(f.payload))));
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const shot = (name) => page.screenshot({ path: path.join(ARTIFACTS, name) });

  await page.goto(`http://127.0.0.1:${httpPort}/`);
  await until('the board live', async () => (await page.getAttribute('#conn', 'data-state')) === 'live');
  assert.equal(await page.textContent('h1'), '客服中心实时看板');
  assert.equal(await page.textContent('#sl-total'), '—', 'no service level before any call');
  assert.match(await page.textContent('#formula'), /服务水平 = 3 秒内接听的来电 ÷ 已结束振铃的来电/);
  const tile = (ext) => page.locator(`.tile[data-agent="${ext}"]`);
  assert.equal(await tile('8006').getAttribute('data-state'), 'unknown');
  assert.match(await tile('8006').textContent(), /状态未知/);

  for (const [i, ext] of ['8001', '8002', '8003', '8004', '8005'].entries()) await feed.register(ext, i + 1, 3600);
  await until('registered phones idle', async () => (await tile('8001').getAttribute('data-state')) === 'idle');

  // A call rings at 李娜 (8001) and is not answered.
  const late = new Call('browser-late-1', '8001', NUMBERS[0]);
  const rang = Date.now();
  await feed.ring(late);
  const row = page.locator('.ring[data-leg]');
  await until('the ringing call on the board', async () => (await row.count()) === 1);
  assert.match(await row.textContent(), /李娜 8001/);
  assert.match(await row.textContent(), /138\*\*\*\*5678/, 'the customer, masked');
  assert.equal(await tile('8001').getAttribute('data-state'), 'ringing');
  const timer = row.locator('.timer');
  const secs = async () => {
    const [m, s] = (await timer.textContent()).split(':').map(Number);
    return m * 60 + s;
  };
  const first = await secs();
  assert.ok(first <= 1, `a fresh call shows 0:00 or 0:01, not ${await timer.textContent()}`);
  await sleep(1300);
  const second = await secs();
  assert.ok(second > first && second <= 3, `the timer runs: ${first} then ${second}`);
  await until('amber from 70 % of the threshold', async () => (await row.getAttribute('data-level')) === 'amber', 5000);
  const amberAt = Date.now() - rang;
  assert.ok(amberAt >= THRESHOLD_MS * 0.7 - 300, `amber after ${amberAt} ms`);
  await shot('01-ringing-amber.png');
  await until('red from the threshold', async () => (await row.getAttribute('data-level')) === 'red', 5000);
  const redAt = Date.now() - rang;
  assert.ok(redAt >= THRESHOLD_MS - 300 && redAt < THRESHOLD_MS + 1500, `red after ${redAt} ms`);

  // The late answer is raised while it still rings: the ticker shows it.
  const tick = page.locator('#ticker li[data-rule="late_answer"]');
  await until('the violation in the ticker', async () => (await tick.count()) === 1, 5000);
  assert.match(await tick.textContent(), /李娜 8001 · 超时接听 \(第60条\)/);
  assert.equal(await row.count(), 1, 'still ringing when the violation shows');
  await until('the rule count', async () => (await page.textContent('#rule-rows tr[data-rule="late_answer"] .count')) === '1');
  await sleep(300);
  await shot('02-ringing-red-violation.png');

  // Answered late, then the customer hangs up: 0 of 1 answered within the threshold.
  await feed.answer(late);
  await until('no call ringing', async () => (await row.count()) === 0);
  await until('8001 talking', async () => (await tile('8001').getAttribute('data-state')) === 'talking');
  await feed.hangUp(late);
  await until('service level 0.0%', async () => (await page.textContent('#sl-total')) === '0.0%');
  await until('8001 idle again', async () => (await tile('8001').getAttribute('data-state')) === 'idle');

  // 王伟 (8002) answers within the threshold: 1 of 2.
  const quick = new Call('browser-quick-1', '8002', NUMBERS[1]);
  await feed.ring(quick);
  await sleep(500);
  await feed.answer(quick);
  await feed.hangUp(quick);
  await until('service level 50.0%', async () => (await page.textContent('#sl-total')) === '50.0%');
  const team = page.locator('#sl-rows tr[data-team="信用卡一组"]');
  assert.match(await team.textContent(), /50\.0%1\/22/);
  assert.equal(await page.textContent('#answered-total'), '2');
  assert.match(await page.textContent('#top-today'), /李娜1/);

  // One more ringing call and one talking, for the picture.
  await feed.ring(new Call('browser-ring-2', '8004', NUMBERS[2]));
  const talking = new Call('browser-talk-3', '8005', NUMBERS[1]);
  await feed.ring(talking);
  await feed.answer(talking);
  await until('8005 talking', async () => (await tile('8005').getAttribute('data-state')) === 'talking');
  await sleep(800);
  await shot('03-floor-zh.png');

  // English by the switch.
  await page.click('#lang');
  assert.equal(await page.textContent('h1'), 'Call Centre Live Board');
  assert.match(page.url(), /lang=en/);
  assert.match(await tick.textContent(), /Late answer \(Art\. 60/);
  assert.equal(await tile('8006').locator('.state').textContent(), 'Unknown');
  await shot('04-floor-en.png');

  // Nothing on the page or in any frame carries a customer number in full.
  const html = await page.content();
  assertNoFullNumber(html, 'the DOM');
  const text = await page.evaluate(() => document.body.innerText);
  assert.ok(!/(^|[^0-9A-Za-z])\d{11,}([^0-9A-Za-z]|$)/.test(text), 'an 11-digit number on screen');
  assert.ok(frames.length > 10, 'frames were seen');
  for (const f of frames) assertNoFullNumber(f, 'a websocket frame');
  assert.ok(frames.some((f) => f.includes('138****5678')), 'the masked number was sent');

  // The daemon goes away: the board says its figures may be stale.
  await stopDaemon(daemon);
  await until('the stale banner', async () => page.isVisible('#stale'), 10000);
  assert.equal(await page.getAttribute('#conn', 'data-state'), 'down');
  await shot('05-stale.png');
  const oldBoot = await page.evaluate(() => window.callwatchBoard.boot);

  // A new run on the same port: the page reconnects by itself and resyncs.
  daemon = await startDaemon(dir, `127.0.0.1:${httpPort}`);
  feed.close();
  feed = new Feed(daemon.hep);
  await until('live again', async () => (await page.getAttribute('#conn', 'data-state')) === 'live', 20000);
  await until('the new run', async () => (await page.evaluate(() => window.callwatchBoard.boot)) !== oldBoot);
  await until('the stale banner gone', async () => !(await page.isVisible('#stale')));
  await until('nothing ringing after the resync', async () => (await row.count()) === 0);
  await feed.register('8003', 10, 3600);
  await until('8003 idle in the new run', async () => (await tile('8003').getAttribute('data-state')) === 'idle');
  await shot('06-after-restart-en.png');

  // ?lang=en from the start.
  await page.goto(`http://127.0.0.1:${httpPort}/?lang=en`);
  await until('English page', async () => (await page.textContent('h1')) === 'Call Centre Live Board');
  assert.deepEqual(errors, [], 'no script error');
});
