// Runs the review page in headless Chromium behind host.js (the official AppBridge) and does
// what a person would: the scenario comes as JSON on stdin, the observations go as JSON to
// stdout. tests/test_review_app.py writes the scenario and makes the assertions.
//
// stdin:  {html, toolInput, toolResult, toolResponses, echoToolResults, steps}
// stdout: {host, snapshots, console, pageErrors, unexpectedRequests, images, unlabelled}
//   or, when a step fails: {error, ...what was observed until then}, exit code 1.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { chromium } from "playwright-core";

const HOST_URL = "http://host.test/";
const APP_URL = "http://app.test/review.html";
// What a host applies when the resource declares no CSP (MCP Apps spec, "Restrictive Default").
const APP_CSP = "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
  + "img-src 'self' data:; media-src 'self' data:; connect-src 'none'";
// Without these Chromium keeps calling home, and this machine's network is closed.
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

async function hostPage() {
  const bundle = await build({
    entryPoints: [fileURLToPath(new URL("host.js", import.meta.url))],
    bundle: true, write: false, format: "iife", platform: "browser", logLevel: "silent",
  });
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test host</title></head>`
    + `<body><script>${bundle.outputFiles[0].text.replaceAll("</script", "<\\/script")}</script></body></html>`;
}

async function serve(context, appHtml, observed) {
  const host = await hostPage();
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url === HOST_URL) return route.fulfill({ contentType: "text/html", body: host });
    if (url === APP_URL) {
      return route.fulfill({ contentType: "text/html", headers: { "content-security-policy": APP_CSP }, body: appHtml });
    }
    if (!url.endsWith("/favicon.ico")) observed.unexpectedRequests.push(url);
    return route.abort();
  });
}

const decisionGroup = (frame, opId) => frame.getByRole("group", { name: `Decision for ${opId}`, exact: true });

const STEPS = {
  async click(frame, { click, exact = true, key }) {
    const button = frame.getByRole("button", { name: click, exact });
    await (key ? button.press(key) : button.click());
  },
  async decide(frame, { decide, choice, key }) {
    const radio = decisionGroup(frame, decide).getByRole("radio", { name: choice, exact: true });
    await (key ? radio.press(key) : radio.check());
  },
  async edit(frame, { edit, text }) {
    const box = frame.getByRole("textbox", { name: `New text for ${edit}`, exact: true });
    if (!(await box.isVisible())) {
      await frame.locator(`#op-${edit} details.edit > summary`).click();
    }
    await box.fill(text);
  },
  async waitForOutcome(frame, { waitForOutcome }) {
    await frame.locator("#outcome").filter({ hasText: waitForOutcome }).waitFor();
  },
  async waitForHost(frame, { waitForHost, count }, page) {
    await page.waitForFunction(([key, n]) => window.hostLog[key].length >= n, [waitForHost, count]);
  },
  async screenshot(frame, { screenshot, of = "body" }) { // for looking at the page, not for asserting
    await frame.locator(of).screenshot({ path: screenshot });
  },
  async snapshot(frame, { snapshot }, page, observed) {
    observed.snapshots[snapshot] = await frame.locator("body").evaluate(snapshotOf);
  },
};

// Runs inside the app's frame: what a person sees of each operation and of the controls.
function snapshotOf() {
  const ops = {};
  for (const card of document.querySelectorAll("article.op")) {
    const radio = (value) => card.querySelector(`input[type=radio][value=${value}]`);
    ops[card.id.replace(/^op-/, "")] = {
      approved: radio("approve")?.checked ?? null,
      rejected: radio("reject")?.checked ?? null,
      disabled: radio("approve")?.disabled ?? null,
      risk: card.querySelector(".risk")?.textContent ?? null,
      status: card.querySelector(".status-badge")?.textContent ?? "",
      before: card.querySelector(".before")?.textContent ?? null,
      after: card.querySelector(".after")?.textContent ?? null,
      hint: card.querySelector(".hint")?.textContent ?? null,
      text: card.textContent,
    };
  }
  const apply = document.getElementById("apply");
  return {
    ops,
    apply: { label: apply.textContent, disabled: apply.disabled },
    tally: document.getElementById("tally").textContent,
    notice: document.getElementById("notice").textContent,
    outcome: document.getElementById("outcome").textContent,
    outcomeRole: document.getElementById("outcome").getAttribute("role"),
  };
}

// Runs inside the app's frame: form controls a screen reader would announce without a name.
function unlabelledControls() {
  const named = (el) => el.labels?.length || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby")
    || (el.tagName === "BUTTON" && el.textContent.trim());
  return [...document.querySelectorAll("button, input, textarea, select")].filter((el) => !named(el)).map((el) => el.outerHTML);
}

async function run(scenario, observed) {
  const profile = await mkdtemp(join(tmpdir(), "reverie-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium", headless: true, args: CHROMIUM_ARGS,
  });
  try {
    context.setDefaultTimeout(10_000);
    await serve(context, scenario.html, observed);
    const page = context.pages()[0] ?? await context.newPage();
    page.on("console", (message) => {
      if (["error", "warning"].includes(message.type())) observed.console.push(`${message.type()}: ${message.text()}`);
    });
    page.on("pageerror", (error) => observed.pageErrors.push(String(error)));
    await page.goto(HOST_URL);
    await page.evaluate((options) => window.startHost(options), {
      appUrl: APP_URL, toolInput: scenario.toolInput, toolResult: scenario.toolResult,
      toolResponses: scenario.toolResponses, echoToolResults: Boolean(scenario.echoToolResults),
    });
    const frame = page.frameLocator("iframe");
    await frame.locator("article.op").first().waitFor();
    for (const step of scenario.steps) {
      const name = Object.keys(STEPS).find((key) => key in step);
      if (!name) throw new Error(`Unknown step ${JSON.stringify(step)}`);
      observed.stepsDone.push(step);
      await STEPS[name](frame, step, page, observed);
    }
    observed.host = await page.evaluate(() => window.hostLog);
    observed.images = await frame.locator("img").count();
    observed.unlabelled = await frame.locator("body").evaluate(unlabelledControls);
  } finally {
    await context.close();
    await rm(profile, { recursive: true, force: true });
  }
}

let input = "";
for await (const chunk of process.stdin) input += chunk;
const observed = { snapshots: {}, console: [], pageErrors: [], unexpectedRequests: [], stepsDone: [] };
try {
  await run(JSON.parse(input), observed);
  process.stdout.write(JSON.stringify(observed));
} catch (error) {
  process.stdout.write(JSON.stringify({ error: String(error?.stack ?? error), ...observed }));
  process.exitCode = 1;
}
