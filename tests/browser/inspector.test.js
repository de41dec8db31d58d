// The inspector pages in a real browser (Debian's Chromium, headless, driven by
// playwright-core; no browser is downloaded). The test starts `callwatch run` on free
// ports with a temporary data folder (SQLite store), two accounts (an inspector and an
// admin, hashed by `callwatch hash-password`), the roster of the wallboard test and a
// 1 s late-answer threshold; plays over HEP one call that 李娜 (8001) answers late and
// hangs up herself without the survey transfer (late_answer, agent_hangup_first,
// survey_missing), and one clean call at 王伟 (8002). Then, as a quality inspector would:
// the login form refuses a wrong password with a visible message; the queue lists the
// flagged call (rules, agent, time, the customer masked); the call shows its timeline
// and its SIP ladder (INVITE, 180, 200, ACK, BYE, 200 in the right directions, the text
// of a message on Enter); a confirmation is recorded with the reviewer and time; a
// dismissal is refused without a reason and recorded with one; the agent's quarterly
// scorecard goes from 0 points to the confirmed rule's points, the dismissal adding
// none; no full customer number is in the DOM; the CSV export, downloaded through the
// page, has the Chinese name intact; an admin sees the verdicts in the audit trail.
// Screenshots: target/browser-artifacts/inspector-*.png.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { Call, Feed } = require('./hep');

const ROOT = path.resolve(__dirname, '../..');
const BIN = process.env.CALLWATCH_BIN || path.join(ROOT, 'target/debug/callwatch');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.join(ROOT, 'target/browser-artifacts');
const THRESHOLD_MS = 1000;
const CUSTOMERS = ['13812345678', '13900001111'];
const INSPECTOR = { name: 'zhang.wei', password: 'Zq7-Lantern-Mosaic' };
const ADMIN = { name: 'li.na', password: 'Vk9#Harbor-Tulip-x' };
// Points per confirmed violation: distinct, so the scorecard shows which one counted.
const POINTS = { late_answer: 1, agent_hangup_first: 3, survey_missing: 2 };

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** `callwatch hash-password`, fed the password on standard input. */
function hashPassword(pw) {
  const r = spawnSync(BIN, ['hash-password'], { input: `${pw}\n`, encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, `hash-password failed: ${r.stderr}`);
  const hash = r.stdout.trim();
  assert.match(hash, /^\$argon2id\$/, `not a PHC string: ${hash}`);
  return hash;
}

const q = (s) => JSON.stringify(s); // a TOML basic string (JSON's escapes are TOML's)

function writeConfig(dir) {
  const file = path.join(dir, 'callwatch.toml');
  fs.writeFileSync(
    file,
    `[capture]
hep_listen = "127.0.0.1:0"

[agents]
extensions = ["8001-8099"]
roster = ${q(path.join(__dirname, 'roster.csv'))}

[rules.late_answer]
threshold_ms = ${THRESHOLD_MS}

[scorecard.points]
${Object.entries(POINTS).map(([k, v]) => `${k} = ${v}`).join('\n')}

[http]
listen = "127.0.0.1:0"

[store]
url = ${q(`sqlite://${dir}/callwatch.db`)}

[time]
zone = "Asia/Shanghai"

[auth]
session_minutes = 60

[[auth.users]]
name = ${q(INSPECTOR.name)}
role = "inspector"
password_hash = ${q(hashPassword(INSPECTOR.password))}

[[auth.users]]
name = ${q(ADMIN.name)}
role = "admin"
password_hash = ${q(hashPassword(ADMIN.password))}
`,
  );
  return file;
}

/** Starts `callwatch run --config FILE`; resolves with its ports once it says where it listens. */
function startDaemon(config) {
  const env = { ...process.env, RUST_LOG: 'warn' };
  for (const k of Object.keys(env)) if (k.startsWith('CALLWATCH__')) delete env[k];
  const child = spawn(BIN, ['run', '--config', config], { env, stdio: ['ignore', 'ignore', 'pipe'] });
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
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`daemon exited (${code}):\n${err}`));
    });
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
  for (const n of CUSTOMERS) assert.ok(!text.includes(n), `full customer number ${n} in ${where}`);
}

test('the inspector pages in a real browser', { timeout: 180000 }, async (t) => {
  assert.ok(fs.existsSync(BIN), `${BIN} missing: build it first (cargo build --bin callwatch)`);
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} missing: apt-get install chromium`);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'callwatch-inspect-'));
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'callwatch-chromium-'));
  const daemon = await startDaemon(writeConfig(dir));
  const base = `http://127.0.0.1:${daemon.http}`;
  const feed = new Feed(daemon.hep);
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    acceptDownloads: true,
    locale: 'zh-CN',
    viewport: { width: 1600, height: 1000 },
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
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const outside = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(base) && !r.url().startsWith('blob:') && !r.url().startsWith('data:')) outside.push(r.url());
  });
  const shot = (name) => page.screenshot({ path: path.join(ARTIFACTS, `inspector-${name}.png`), fullPage: true });

  // The calls. 李娜 (8001) answers after the threshold and hangs up first, no survey.
  const bad = new Call('inspect-bad-1', '8001', CUSTOMERS[0]);
  await feed.ring(bad);
  await sleep(THRESHOLD_MS + 400);
  await feed.answer(bad);
  await sleep(300);
  // The phone reports 5 % lost and 10 ms of jitter on the switch's audio (HEP has no RTP).
  await feed.rtcpFromPhone(bad, 5, 80);
  await sleep(400);
  await feed.agentHangsUp(bad);
  // 王伟 (8002) answers at once and the customer hangs up: stored, not flagged.
  const good = new Call('inspect-good-1', '8002', CUSTOMERS[1]);
  await feed.ring(good);
  await sleep(200);
  await feed.answer(good);
  await sleep(300);
  await feed.hangUp(good);

  // The login form; a wrong password is refused where the user sees it.
  await page.goto(`${base}/inspect/`);
  await page.evaluate(() => localStorage.setItem('cw.lang', 'zh'));
  await page.reload();
  const form = page.locator('form#login');
  await until('the login form', () => form.isVisible());
  assert.equal(await page.evaluate(() => document.activeElement && document.activeElement.id), 'login-name', 'the name field has the focus');
  await page.getByLabel('用户名').fill(INSPECTOR.name);
  await page.getByLabel('密码').fill('Wrong-password-123');
  await shot('01-login');
  await page.keyboard.press('Enter');
  const loginError = page.locator('#login-error');
  await until('the refusal', async () => (await loginError.textContent()) === '用户名或密码错误');
  assert.ok(await loginError.isVisible(), 'the refusal is visible');
  assert.equal(await page.getAttribute('#login-error', 'role'), 'alert');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('cw.token')), null, 'no token after a refusal');
  await shot('02-login-refused');
  await page.getByLabel('密码').fill(INSPECTOR.password);
  await page.keyboard.press('Enter');
  await until('logged in', async () => (await page.textContent('#who')) === `${INSPECTOR.name} · inspector`);

  // The queue lists the flagged call (the store commits in batches: reload until it is in).
  const row = page.locator('#legs tr[data-leg]');
  await until(
    'the flagged call in the queue',
    async () => {
      if ((await row.count()) > 0) return true;
      await page.evaluate(() => window.dispatchEvent(new HashChangeEvent('hashchange')));
      await sleep(300);
      return false;
    },
    20000,
  );
  assert.equal(await row.count(), 1, 'only the flagged call is listed (the clean one is not)');
  assert.equal(await row.locator('.c-name').textContent(), '李娜');
  assert.match(await row.locator('.c-agent').textContent(), /^A1001/);
  assert.equal(await row.locator('.c-team').textContent(), '信用卡一组');
  assert.equal(await row.locator('.c-customer').textContent(), '138****5678', 'the customer, masked');
  const today = new Date().toLocaleDateString('sv-SE', { timeZone: 'Asia/Shanghai' });
  assert.match(await row.locator('.c-time').textContent(), new RegExp(`^${today} \\d{2}:\\d{2}:\\d{2}$`));
  const rules = await row.locator('.c-rules .tag').evaluateAll((ts) => ts.map((e) => e.dataset.rule).sort());
  assert.deepEqual(rules, ['agent_hangup_first', 'late_answer', 'survey_missing']);
  assert.match(await row.locator('.c-rules').textContent(), /超时接听 \(第60条\)/);
  assert.equal(await row.locator('.c-review').textContent(), '待审');
  const listHtml = await page.content();
  assertNoFullNumber(listHtml, 'the DOM of the list page');
  const listText = await page.evaluate(() => document.body.innerText);
  assert.ok(!/(^|[^0-9A-Za-z])\d{11,}([^0-9A-Za-z]|$)/.test(listText), 'an 11-digit number on the list page');
  await shot('03-list');

  // The CSV export, downloaded by the page with its session: UTF-8 with a BOM, CRLF,
  // the Chinese name intact, the number masked.
  const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 10000 }), page.click('#export-legs')]);
  assert.equal(dl.suggestedFilename(), 'flagged-legs.csv');
  const csv = fs.readFileSync(await dl.path());
  assert.deepEqual([...csv.subarray(0, 3)], [0xef, 0xbb, 0xbf], 'a byte-order mark for Excel');
  const csvText = csv.toString('utf8');
  assert.ok(csvText.includes('\r\n'), 'CRLF line ends');
  assert.ok(csvText.includes('李娜'), `the Chinese name intact:\n${csvText}`);
  assert.ok(csvText.includes('信用卡一组'));
  assert.ok(csvText.includes('138****5678'));
  assertNoFullNumber(csvText, 'the CSV export');
  const lines = csvText.trim().split('\r\n');
  assert.equal(lines.length, 2, `a header and one call:\n${csvText}`);

  // The scorecard before any verdict: 李娜 has three pending violations, no points.
  await page.click('#nav-scores');
  const liNa = page.locator('#scores tr[data-agent="A1001"]');
  await until('the scorecard', () => liNa.isVisible());
  assert.match(await liNa.textContent(), /李娜/);
  assert.equal(await liNa.locator('.points').textContent(), '0');
  assert.equal(await liNa.locator('.pending').textContent(), '3');
  assert.equal(await liNa.locator('.dismissed').textContent(), '0');
  const wangWei = page.locator('#scores tr[data-agent="A1002"]');
  await until('王伟 on the scorecard (a clean call)', async () => {
    if ((await wangWei.count()) === 1) return true;
    await page.click('#scores-search');
    return false;
  });
  assert.equal(await wangWei.locator('.points').textContent(), '0');
  assert.equal(await wangWei.locator('.pending').textContent(), '0');
  await shot('04-scorecard-before');

  // Open the call from the queue with the keyboard.
  await page.click('#nav-queue');
  await until('the queue again', async () => (await row.count()) === 1);
  await row.focus();
  await page.keyboard.press('Enter');
  await until('the call page', () => page.locator('#ladder').isVisible());
  const legId = await page.evaluate(() => decodeURIComponent(location.hash.replace('#/call/', '')));

  // Media quality from the phone's RTCP report (HEP carries no RTP): the switch's audio
  // as the phone received it, 5 % lost (13/256 = 5.08) and 10 ms of jitter.
  const media = await page.locator('#media tr').evaluateAll((rs) =>
    rs.slice(1).map((r) => Array.from(r.cells).map((c) => c.textContent)));
  assert.equal(media.length, 1, JSON.stringify(media));
  assert.match(media[0][0], /^customer 10\.1\.0\.10:10000 → 10\.1\.9\.\d+:30000$/);
  assert.equal(media[0][2], 'RTCP ×1');
  assert.match(media[0][3], /^5\.08 \(max 5\.08\)$/);
  assert.equal(media[0][4], '10 / 10');

  // The timeline: ringing then talking, the three violations marked.
  const phases = await page.locator('#timeline rect.phase').evaluateAll((rs) => rs.map((r) => r.dataset.kind));
  assert.deepEqual(phases, ['ring', 'talk']);
  const marks = await page.locator('#timeline line.mark').evaluateAll((ls) => ls.map((l) => l.dataset.rule).sort());
  assert.deepEqual(marks, ['agent_hangup_first', 'late_answer', 'survey_missing']);

  // The SIP ladder: who sent what to whom, in order.
  const hosts = await page.locator('#ladder text.host').evaluateAll((ts) => ts.map((e) => e.dataset.host));
  assert.deepEqual(hosts, ['10.1.0.10:5060', `${bad.phone.ip}:5060`], 'the switch left, the phone right');
  assert.deepEqual(await page.locator('#ladder text.role').allTextContents(), ['交换机/对端', '坐席话机 8001']);
  const msgs = await page.locator('#ladder g.msg').evaluateAll((gs) =>
    gs.map((g) => ({ label: g.dataset.label, dir: g.dataset.dir, src: g.dataset.src, dst: g.dataset.dst })),
  );
  const want = [
    [/^INVITE sip:8001@/, 'right'],
    [/^180 Ringing$/, 'left'],
    [/^200 OK$/, 'left'],
    [/^ACK sip:8001@/, 'right'],
    [/^BYE sip:138\*\*\*\*5678@/, 'left'],
    [/^200 OK$/, 'right'],
  ];
  assert.equal(msgs.length, want.length, `the ladder: ${JSON.stringify(msgs)}`);
  want.forEach(([label, dir], i) => {
    assert.match(msgs[i].label, label, `message ${i}: ${JSON.stringify(msgs[i])}`);
    assert.equal(msgs[i].dir, dir, `message ${i} (${msgs[i].label}) goes ${dir}`);
  });
  const visibleLabels = await page.locator('#ladder g.msg text.label').allTextContents();
  assert.deepEqual(visibleLabels.slice(0, 3), [msgs[0].label, '180 Ringing', '200 OK'], 'first lines printed on the arrows');
  // The arrows really point that way.
  const geo = await page.locator('#ladder g.msg line.arrow').evaluateAll((ls) => ls.map((l) => Number(l.getAttribute('x2')) - Number(l.getAttribute('x1'))));
  geo.forEach((dx, i) => assert.equal(dx > 0 ? 'right' : 'left', want[i][1], `arrow ${i}`));
  // The first message is shown in full; the keyboard moves to the BYE and shows it.
  assert.match(await page.textContent('#sip-text'), /INVITE sip:8001@10\.1\.9\.\d+:5060 SIP\/2\.0/);
  await page.locator('#ladder g.msg').first().focus();
  for (let i = 0; i < 4; i++) await page.keyboard.press('ArrowDown');
  const byeText = await page.textContent('#sip-text');
  assert.match(byeText, /BYE sip:138\*\*\*\*5678@10\.1\.0\.10:5060 SIP\/2\.0/);
  assert.match(byeText, /CSeq: 1 BYE/);
  assertNoFullNumber(await page.content(), 'the DOM of the call page');
  await page.locator('#ladder').scrollIntoViewIfNeeded();
  await shot('05-call-ladder');

  // Confirm one violation: recorded with the reviewer and the time.
  const vrow = (rule) => page.locator(`#violations tr[data-rule="${rule}"]`);
  assert.equal(await vrow('agent_hangup_first').getAttribute('data-verdict'), 'pending');
  assert.equal(await page.locator('#agent-points').textContent(), '0');
  // With the keyboard: the button says which rule it is for.
  await vrow('agent_hangup_first').getByRole('button', { name: '确认违规: 先于客户挂机 (第74条)' }).focus();
  await page.keyboard.press('Enter');
  await until('the confirmation recorded', async () => (await vrow('agent_hangup_first').getAttribute('data-verdict')) === 'confirmed');
  const state = await vrow('agent_hangup_first').locator('.state').textContent();
  assert.match(state, /确认/);
  assert.match(await vrow('agent_hangup_first').locator('.reviewer').textContent(), new RegExp(`^审核人 ${INSPECTOR.name} · ${today} \\d{2}:\\d{2}:\\d{2}$`));
  assert.match(await page.textContent('#verdict-msg'), /^已记录: 确认 · 先于客户挂机/);
  await until('the points on the call page', async () => (await page.locator('#agent-points').textContent()) === String(POINTS.agent_hangup_first));

  // A dismissal without a reason is refused on the page; with one it is recorded.
  await vrow('survey_missing').getByRole('button', { name: /^驳回: 未转满意度/ }).click();
  await until('the reason asked for', async () => /驳回需要填写理由/.test(await page.textContent('#verdict-msg')));
  assert.equal(await page.evaluate(() => document.activeElement.id), 'reason', 'the reason field has the focus');
  assert.equal(await vrow('survey_missing').getAttribute('data-verdict'), 'pending');
  await page.getByLabel(/^理由/).fill('第65条 骚扰电话');
  await vrow('survey_missing').getByRole('button', { name: /^驳回: 未转满意度/ }).click();
  await until('the dismissal recorded', async () => (await vrow('survey_missing').getAttribute('data-verdict')) === 'dismissed');
  assert.match(await vrow('survey_missing').locator('.reason').textContent(), /第65条 骚扰电话/);
  assert.match(await vrow('survey_missing').locator('.reviewer').textContent(), new RegExp(`${INSPECTOR.name} · ${today}`));
  await until('the points unchanged by a dismissal', async () => /· 已驳回 1 · 待审 1/.test(await page.textContent('#agent-score')));
  assert.equal(await page.locator('#agent-points').textContent(), String(POINTS.agent_hangup_first));
  await page.locator('#violations').scrollIntoViewIfNeeded();
  await shot('06-call-verdicts');

  // The scorecard after: the confirmed rule's points, the dismissal adding none.
  await page.click('#nav-scores');
  await until('the scorecard after', async () => (await liNa.locator('.points').textContent()) === String(POINTS.agent_hangup_first));
  assert.equal(await liNa.locator('.dismissed').textContent(), '1');
  assert.equal(await liNa.locator('.pending').textContent(), '1');
  assert.match(await liNa.textContent(), new RegExp(`1 \\(${POINTS.agent_hangup_first}\\)`), 'one agent_hangup_first counted');
  await shot('07-scorecard-after');
  // Its CSV, through the page's session: the Chinese name and the points.
  const [sdl] = await Promise.all([page.waitForEvent('download', { timeout: 10000 }), page.click('#export-scores')]);
  const scoreCsv = fs.readFileSync(await sdl.path()).toString('utf8');
  const liNaLine = scoreCsv.split('\r\n').find((l) => l.includes('A1001'));
  assert.ok(liNaLine && liNaLine.includes('李娜') && liNaLine.includes('信用卡一组'), `the scorecard CSV:\n${scoreCsv}`);
  const head = scoreCsv.replace(/^\uFEFF/, '').split('\r\n')[0].split(',');
  const cells = liNaLine.split(',');
  assert.equal(cells[head.indexOf('扣分合计 points_total')], String(POINTS.agent_hangup_first), `points in the CSV: ${liNaLine}`);
  assert.equal(cells[head.indexOf('已驳回 dismissed')], '1');

  // The queue shows the call as partly reviewed.
  await page.click('#nav-queue');
  await until('the review state', async () => (await row.count()) === 1 && (await row.locator('.c-review').textContent()) === '待审');
  const tags = await row.locator('.c-rules .tag').evaluateAll((ts) => Object.fromEntries(ts.map((e) => [e.dataset.rule, e.className])));
  assert.match(tags.agent_hangup_first, /confirmed/);
  assert.match(tags.survey_missing, /dismissed/);
  assert.match(tags.late_answer, /pending/);

  // English by the switch.
  await page.click('#lang');
  await until('English', async () => (await page.textContent('#nav-queue')) === 'Review queue');
  assert.match(await row.locator('.c-rules').textContent(), /Late answer \(Art\. 60\)/);

  // An admin reads the audit trail of the call: both verdicts, who and when.
  await page.click('#logout');
  await until('logged out', () => form.isVisible());
  await page.getByLabel('Name').fill(ADMIN.name);
  await page.getByLabel('Password').fill(ADMIN.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await until('the admin in', async () => (await page.textContent('#who')) === `${ADMIN.name} · admin`);
  await page.evaluate((id) => { location.hash = `#/call/${encodeURIComponent(id)}`; }, legId);
  const audit = page.locator('#audit tr[data-action="verdict"]');
  await until('the audit trail', async () => (await audit.count()) === 2);
  const entries = await audit.evaluateAll((rs) => rs.map((r) => [...r.cells].map((c) => c.textContent)));
  for (const e of entries) {
    assert.match(e[0], new RegExp(`^${today} \\d{2}:\\d{2}:\\d{2}$`), `the time: ${e}`);
    assert.equal(e[1], INSPECTOR.name, `the user: ${e}`);
  }
  const verdicts = entries.map((e) => e[4]).sort();
  assert.deepEqual(verdicts, ['Confirmed', 'Dismissed']);
  assert.ok(entries.some((e) => e[5].includes('第65条 骚扰电话')), 'the reason in the trail');
  await page.locator('#audit').scrollIntoViewIfNeeded();
  await shot('08-audit-en');

  assert.deepEqual(outside, [], 'nothing requested from elsewhere');
  assert.deepEqual(errors, [], 'no script error');
});
