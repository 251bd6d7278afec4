// The dashboard in a real browser: Playwright drives Debian's chromium (one
// launch for every check) against a `ratchet server` this test starts on a
// store of its own, with calls made by dashboard_fixture and jobs started with
// `ratchet start`. Each check waits on what it expects to see, with a bound;
// nothing sleeps. Screenshots are saved in SCREENSHOT_DIR.
//
// usage: node dashboard.test.mjs RATCHET_BIN FIXTURE_BIN SCREENSHOT_DIR
import {chromium} from "playwright-core";
import {spawn, execFileSync} from "node:child_process";
import {mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync} from "node:fs";
import {tmpdir} from "node:os";
import {join} from "node:path";
import {createInterface} from "node:readline";

const [ratchetBin, fixtureBin, screenshots] = process.argv.slice(2);
if (!ratchetBin || !fixtureBin || !screenshots) {
  console.error("usage: node dashboard.test.mjs RATCHET_BIN FIXTURE_BIN SCREENSHOT_DIR");
  process.exit(2);
}
const API_KEY = "api-secret";
const READ_KEY = "viewer";
const BOUND = 30_000;  // the longest any one expectation waits
const home = mkdtempSync(join(tmpdir(), "ratchet-dashboard-"));
mkdirSync(screenshots, {recursive: true});
const env = {...process.env, RATCHET_HOME: home};

let passed = 0, failed = 0;
const children = [];

async function check(name, body) {
  const started = Date.now();
  try {
    await body();
    passed++;
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (error) {
    failed++;
    console.log(`FAIL ${name}: ${error.stack || error}`);
    await shot(`FAILED-${name.replace(/[^a-z0-9]+/gi, "-")}`).catch(() => {});
  }
}

function expect(condition, message) { if (!condition) throw new Error(message); }

// ---- the server and the fixture -------------------------------------------------------

async function startServer() {
  const log = join(home, "server.log");
  const server = spawn(ratchetBin, ["server", "--listen", "127.0.0.1:0", "--db", join(home, "ratchet.db"),
                                    "--api-key", API_KEY, "--read-key", READ_KEY,
                                    // 5 to 10 minutes before a failed call's retry: only "Retry now" runs it sooner
                                    "--retry-backoff", "10m"],
                       {env, stdio: ["ignore", "ignore", "pipe"]});
  children.push(server);
  let text = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the server did not start: " + text)), BOUND);
    server.stderr.on("data", (chunk) => {
      text += chunk;
      writeFileSync(log, text);
      const match = /listening on [^ ]+:([0-9]+) /.exec(text);
      if (match) { clearTimeout(timer); resolve(`http://127.0.0.1:${match[1]}`); }
    });
    server.on("exit", (code) => reject(new Error(`the server exited (${code}): ${text}`)));
  });
}

function startFixture(url) {
  const fixture = spawn(fixtureBin, [url, API_KEY], {stdio: ["pipe", "pipe", "inherit"]});
  children.push(fixture);
  const lines = createInterface({input: fixture.stdout});
  const waiting = [];
  lines.on("line", (line) => waiting.shift()(JSON.parse(line)));
  return (command) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`fixture: no answer to ${command}`)), 60_000);
    waiting.push((answer) => {
      clearTimeout(timer);
      if (answer.error) reject(new Error(`fixture ${command}: ${answer.error}`));
      else resolve(answer);
    });
    fixture.stdin.write(command + "\n");
  });
}

function ratchet(...args) {
  return JSON.parse(execFileSync(ratchetBin, args, {env, encoding: "utf8"}));
}

// ---- the browser ---------------------------------------------------------------------------

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic"],
});
const page = await browser.newPage({viewport: {width: 1400, height: 900}});
const pageErrors = [];
page.on("pageerror", (error) => pageErrors.push(error.message));
// The browser reports the refused key of the first check as a failed load, and the
// event streams the fallback check blocks: those are expected.
let blockingStreams = false;
page.on("console", (message) => {
  if (message.type() !== "error" || /status of 401/.test(message.text())) return;
  if (blockingStreams && /ERR_FAILED/.test(message.text())) return;
  pageErrors.push(message.text());
});
page.on("dialog", (dialog) => dialog.accept());

async function shot(name) { await page.screenshot({path: join(screenshots, name + ".png"), fullPage: true}); }
async function text(selector) { return (await page.locator(selector).first().textContent({timeout: BOUND})) || ""; }
async function waitText(selector, wanted) {
  await page.waitForFunction(([s, w]) => {
    const node = document.querySelector(s);
    return node && node.textContent.includes(w);
  }, [selector, wanted], {timeout: BOUND});
}
async function go(url, hash, rendered) {
  await page.goto(url + "/" + hash);
  if (rendered) await page.waitForSelector(`body[data-rendered="${rendered}"]`, {timeout: BOUND});
}

let url, fixture;
try {
  url = await startServer();
  fixture = startFixture(url);
  const fanout = (await fixture("fanout 100")).id;
  const failedCall = (await fixture("fail")).id;
  await fixture("echo");

  await check("a request without a key is refused", async () => {
    const none = await fetch(url + "/ratchet/v1/runs");
    expect(none.status === 401, `no key: ${none.status}`);
    const wrong = await fetch(url + "/ratchet/v1/runs", {headers: {Authorization: "Bearer nope"}});
    expect(wrong.status === 401, `wrong key: ${wrong.status}`);
    const body = await wrong.json();
    expect(body.code === "unauthenticated", JSON.stringify(body));
    const reader = await fetch(url + `/ratchet/v1/calls/${failedCall}`, {headers: {Authorization: `Bearer ${READ_KEY}`}});
    expect(reader.status === 200, `read key reads: ${reader.status}`);
    const act = await fetch(url + `/ratchet/v1/calls/${failedCall}/cancel`,
                            {method: "POST", headers: {Authorization: `Bearer ${READ_KEY}`}});
    expect(act.status === 403, `read key acts: ${act.status}`);
    // In the page: the key form, and a wrong key sends it back with the reason.
    await go(url, "");
    await page.waitForSelector("#key-form", {timeout: BOUND});
    await page.fill("#key-input", "nope");
    await page.click("#key-form button");
    await waitText("#key-error", "missing or unknown key");
    await shot("01-key-refused");
  });

  await check("the runs list shows jobs and calls, filters and pages", async () => {
    ratchet("start", "--run-key", "nightly", "--sync", "--", "sh", "-c", "echo built");
    await page.fill("#key-input", API_KEY);
    await page.click("#key-form button");
    await page.waitForSelector('body[data-rendered="runs"]', {timeout: BOUND});
    const firstRender = await page.evaluate(() => window.ratchetFirstRender);
    // Straight from the page's own load (navigation to first rendered page of runs).
    await page.reload();
    await page.waitForSelector('body[data-rendered="runs"]', {timeout: BOUND});
    const reloaded = await page.evaluate(() => window.ratchetFirstRender);
    console.log(`first page of runs rendered in ${reloaded.toFixed(0)} ms after navigation ` +
                `(${firstRender.toFixed(0)} ms including the key prompt)`);
    await waitText("#runs-body", "fanout");
    const rows = await page.locator("#runs-body tr.run").count();
    expect(rows === 4, `4 runs (fanout, permanent, echo, the job), not the fan-out's children: ${rows}`);
    expect((await text("#runs-body")).includes("sh -c echo built"), "the job's command is listed");
    await shot("02-runs");
    await go(url, "#/?status=FAILED", "runs");
    await page.waitForFunction(() => document.querySelectorAll("#runs-body tr.run").length === 1, null, {timeout: BOUND});
    expect((await text("#runs-body tr.run")).includes("permanent"), "only the failed call");
    await go(url, "#/?scope=all&kind=call", "runs");
    await page.waitForSelector("#next-page", {timeout: BOUND});  // 103 calls: more than one page
    await page.click("#next-page");
    await page.waitForFunction(() => location.hash.includes("cursor="), null, {timeout: BOUND});
    await page.waitForSelector('body[data-rendered="runs"]', {timeout: BOUND});
    expect(await page.locator("#runs-body tr.run").count() === 50, "a second page of 50");
  });

  await check("the tree of a fan-out of 100", async () => {
    await go(url, `#/calls/${fanout}`, "call");
    await waitText("#call-status", "SUCCEEDED");
    const nodes = await page.locator("#tree tr.node").count();
    expect(nodes === 101, `101 calls in the tree: ${nodes}`);
    const children = await page.locator('#tree tr.node[data-depth="1"][data-status="SUCCEEDED"]').count();
    expect(children === 100, `100 succeeded children: ${children}`);
    expect(await page.locator("#tree .bar").count() === 101, "a timeline bar per call");
    expect(await page.locator("#tree tr.more-children").count() === 0, "a complete tree says nothing of more children");
    await shot("03-fanout-tree");
    await page.locator('#tree tr.node[data-depth="1"] a').nth(41).click();
    await page.waitForSelector('body[data-rendered="call"]', {timeout: BOUND});
    await waitText("#call", "echo");
    await waitText("#call", fanout);  // its root and parent link back
  });

  await check("a tree wider than the page shows says so under the call, with where to find the rest", async () => {
    // The tree shows the first 1,000 children of a call (kTreeChildren, src/dashboard/views.hpp).
    const wide = (await fixture("fanout 1001")).id;
    await go(url, `#/calls/${wide}`, "call");
    await waitText("#call-status", "SUCCEEDED");
    const nodes = await page.locator("#tree tr.node").count();
    expect(nodes === 1001, `the call and its first 1,000 children: ${nodes}`);
    const more = page.locator("#tree tr.more-children");
    expect(await more.count() === 1, `one line of more children: ${await more.count()}`);
    expect(await more.getAttribute("data-parent") === wide, "under the fan-out");
    const above = await page.evaluate(() => {
      const row = document.querySelector("#tree tr.more-children").previousElementSibling;
      return {depth: row.dataset.depth, last: row === [...document.querySelectorAll("#tree tr.node")].pop()};
    });
    expect(above.depth === "1" && above.last, "after the fan-out's last child shown: " + JSON.stringify(above));
    expect((await more.textContent()).includes("more children not shown: the tree has its first 1000"), await more.textContent());
    const shown = await page.evaluate(() => [...document.querySelectorAll("#tree tr.node")].map((row) => row.dataset.id));
    // The line and the last children above it, not the whole page of 1,001 rows.
    await more.scrollIntoViewIfNeeded();
    await page.screenshot({path: join(screenshots, "03b-wide-tree-more-children.png")});
    // Its link: the runs list, with children, from the last child shown on; the
    // newest there is the child the tree left out.
    await more.locator("a").click();
    await page.waitForSelector('body[data-rendered="runs"]', {timeout: BOUND});
    const hash = await page.evaluate(() => location.hash);
    expect(hash.includes("scope=all") && hash.includes("from="), hash);
    const newest = await page.locator("#runs-body tr.run").first().getAttribute("data-id");
    expect(!shown.includes(newest), `the newest call since then is one the tree left out: ${newest}`);
    await page.locator("#runs-body tr.run a").first().click();
    await page.waitForSelector('body[data-rendered="call"]', {timeout: BOUND});
    await waitText("#call", wide);  // its parent
    await waitText("#call", "echo");
  });

  await check("a failed call's error", async () => {
    await go(url, `#/calls/${failedCall}`, "call");
    await waitText("#call-status", "FAILED");
    await waitText("#error-box", "ValueError");
    await waitText("#error-box", "permanent failure for order-42");
    await waitText("#error-box .traceback", "Traceback (most recent call last)");
    expect((await text("#main")).includes("order-42"), "its input, as text");
    await shot("04-failed-call");
  });

  await check("a running call updates live, by server-sent events", async () => {
    // Every read of the API the page makes: a live view must not poll.
    const reads = [];
    const onRequest = (request) => { if (request.url().includes("/ratchet/v1/")) reads.push(new URL(request.url()).pathname); };
    page.on("request", onRequest);
    const gated = (await fixture("gated")).id;
    await go(url, `#/calls/${gated}`, "call");
    await waitText("#call-status", "RUNNING");
    await page.waitForSelector('body[data-live="events"]', {timeout: BOUND});
    await page.evaluate(() => { window.notReloaded = true; });
    await shot("05-running-call");
    reads.length = 0;
    await fixture("open");
    await waitText("#call-status", "SUCCEEDED");
    expect(await page.evaluate(() => window.notReloaded === true), "updated without a reload");
    await waitText("#output", "1");
    expect(reads.length === 0, "the update came on the event stream, not by asking again: " + reads.join(", "));
    // The runs list too: a new call appears without a reload.
    await go(url, "", "runs");
    await page.waitForSelector('body[data-live="events"]', {timeout: BOUND});
    await page.evaluate(() => { window.notReloaded = true; });
    const before = await page.locator("#runs-body tr.run").count();
    reads.length = 0;
    await fixture("echo");
    await page.waitForFunction((n) => document.querySelectorAll("#runs-body tr.run").length === n + 1,
                               before, {timeout: BOUND});
    expect(await page.evaluate(() => window.notReloaded === true), "the list updated without a reload");
    expect(reads.length === 0, "the list updated from its event stream: " + reads.join(", "));
    page.off("request", onRequest);
  });

  await check("a view whose event stream is refused falls back to polling", async () => {
    // Blocks the stream in the browser: the page must still follow the list.
    blockingStreams = true;
    await page.route("**/ratchet/v1/events*", (route) => route.abort());
    await go(url, "", "runs");
    await page.waitForSelector('body[data-live="polling"]', {timeout: BOUND});
    const before = await page.locator("#runs-body tr.run").count();
    await fixture("echo");
    await page.waitForFunction((n) => document.querySelectorAll("#runs-body tr.run").length === n + 1,
                               before, {timeout: BOUND});
    await page.unroute("**/ratchet/v1/events*");
    blockingStreams = false;
  });

  await check("a job's logs, followed", async () => {
    const go_file = join(home, "GO");
    const job = ratchet("start", "--run-key", "follow-me", "--env", "MODE=full", "--env", "API_TOKEN=supersecret",
                        "--", "sh", "-c", `echo first; while [ ! -e ${go_file} ]; do sleep 0.05; done; echo second >&2; echo third`);
    await go(url, `#/jobs/${job.job_id}`, "job");
    await waitText("#logs-stdout", "first");
    await waitText("#job-status", "RUNNING");
    const shown = await text("#main");
    expect(shown.includes("MODE") && shown.includes("full"), "the env is shown");
    expect(shown.includes("API_TOKEN") && !shown.includes("supersecret"), "a secret-looking value is masked");
    writeFileSync(go_file, "");
    await waitText("#logs-stdout", "third");
    await waitText("#logs-stderr", "second");
    await waitText("#job-status", "SUCCEEDED");
    expect((await text("#logs-stdout")) === "first\nthird\n", "each byte once: " + JSON.stringify(await text("#logs-stdout")));
    await shot("06-job-logs");
  });

  await check("cancel a job", async () => {
    const job = ratchet("start", "--run-key", "sleeper", "--", "sleep", "300");
    await go(url, `#/jobs/${job.job_id}`, "job");
    await waitText("#job-status", "RUNNING");
    await page.click("#job-cancel");
    await waitText("#job-status", "CANCELLED");
    const status = ratchet("status", "--job-id", job.job_id);
    expect(status.status === "CANCELLED", "the store says CANCELLED: " + status.status);
    await shot("07-job-cancelled");
  });

  await check("cancel a call tree from its page: the tree turns CANCELLED live", async () => {
    const tree = (await fixture("hangtree 3")).id;
    await go(url, `#/calls/${tree}`, "call");
    await waitText("#call-status", "RUNNING");
    await page.waitForFunction(() => document.querySelectorAll('#tree tr.node[data-status="RUNNING"]').length === 4,
                               null, {timeout: BOUND});
    await page.waitForSelector('body[data-live="events"]', {timeout: BOUND});
    await page.evaluate(() => { window.notReloaded = true; });
    await page.click("#call-cancel");  // the confirmation is accepted (the dialog handler)
    await page.waitForFunction(() => document.querySelectorAll('#tree tr.node[data-status="CANCELLED"]').length === 4,
                               null, {timeout: BOUND});
    expect(await page.evaluate(() => window.notReloaded === true), "the tree updated without a reload");
    await waitText("#actions", "cancel");
    await waitText("#actions", "dashboard:api-key:");
    expect(!(await text("#actions")).includes(API_KEY), "the key itself is never shown");
    expect(await page.locator("#call-cancel").isDisabled(), "a finished tree cannot be cancelled again");
    expect(await page.locator("#call-retry").isDisabled(), "nor retried");
    await shot("08-tree-cancelled");
  });

  await check("retry now from a call's page; its attempts on the waterfall", async () => {
    const call = (await fixture("backoff")).id;
    // A read key sees the button, disabled.
    const viewer = await browser.newPage({viewport: {width: 1400, height: 900}});
    await viewer.goto(url + "/");
    await viewer.fill("#key-input", READ_KEY);
    await viewer.click("#key-form button");
    await viewer.waitForSelector('body[data-rendered="runs"]', {timeout: BOUND});
    await viewer.goto(url + `/#/calls/${call}`);
    await viewer.waitForSelector('body[data-rendered="call"]', {timeout: BOUND});
    expect(await viewer.locator("#call-retry").isDisabled(), "a read key cannot retry");
    expect(await viewer.locator("#call-cancel").isDisabled(), "a read key cannot cancel");
    await viewer.close();

    await go(url, `#/calls/${call}`, "call");
    await page.waitForSelector('#history-events tr.event[data-outcome="retry"]', {timeout: BOUND});
    await waitText("#call-backoff", "after a backoff");
    expect(!(await page.locator("#call-retry").isDisabled()), "the API key may retry a call in its backoff");
    await page.click("#call-retry");
    await waitText("#call-status", "SUCCEEDED");
    const row = `#tree tr.node[data-id="${call}"]`;
    await page.waitForFunction((s) => document.querySelectorAll(s + " .attempt").length === 2, row, {timeout: BOUND});
    expect(await page.locator(row + " .attempt.error").count() === 1, "the first attempt failed");
    expect((await page.locator(row + " .attempt.error").getAttribute("title")).includes("attempt 1"), "its tooltip");
    expect(await page.locator("#history-events tr.event").count() === 2, "two attempts in its history");
    await waitText("#history-events", "Transient");
    await waitText("#actions", "retry-now");
    expect(await page.locator("#call-retry").isDisabled(), "a finished call cannot be retried");
    await shot("09-retried-waterfall");
  });

  await check("health at a glance, from the scheduler's figures", async () => {
    await go(url, "", "runs");
    await waitText("#health", "error rate");
    await waitText("#health-endpoints", "limit ");
    const endpoint = await text("#health-endpoints li.endpoint");
    expect(/http:\/\/127\.0\.0\.1:[0-9]+ [0-9]+ \/ limit [0-9]+/.test(endpoint), "an endpoint's in flight and limit: " + endpoint);
    await waitText("#health-commit", "ms");
    await shot("10-health");
  });

  await check("no errors in the page's console", async () => {
    expect(pageErrors.length === 0, pageErrors.join("\n"));
  });
} catch (error) {
  failed++;
  console.log(`FAIL setting up: ${error.stack || error}`);
} finally {
  await browser.close().catch(() => {});
  for (const child of children) child.kill("SIGTERM");
  if (failed === 0) rmSync(home, {recursive: true, force: true});
  else console.log(`the server's store and log are kept in ${home}`);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
