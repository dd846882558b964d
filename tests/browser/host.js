// The host side of an MCP App, in the browser: the official AppBridge from
// @modelcontextprotocol/ext-apps, talking to the app in a sandboxed iframe, as a chat client
// would. It answers the app's tools/call with canned results and records everything the app
// asks of it on window.hostLog for run_review.mjs to read.
import { AppBridge, PostMessageTransport } from "@modelcontextprotocol/ext-apps/app-bridge";

window.startHost = async ({ appUrl, toolInput, toolResult, toolResponses, echoToolResults }) => {
  const log = { toolCalls: [], modelContext: [], sizes: [], logs: [] };
  window.hostLog = log;
  const iframe = document.createElement("iframe");
  iframe.title = "Dream review";
  iframe.setAttribute("sandbox", "allow-scripts"); // an opaque origin, like a host's sandbox
  iframe.style.cssText = "display: block; width: 720px; border: 0;"; // a chat column
  document.body.append(iframe);

  const bridge = new AppBridge(null, { name: "reverie-test-host", version: "1.0.0" },
    { serverTools: {}, updateModelContext: { text: {}, structuredContent: {} }, logging: {} },
    { hostContext: { theme: "light", displayMode: "inline", availableDisplayModes: ["inline"], locale: "en-GB" } });
  const responses = [...toolResponses];
  bridge.oncalltool = async (params) => {
    log.toolCalls.push(params);
    const result = responses.shift() ?? { isError: true, content: [{ type: "text", text: "No canned result left." }] };
    // Some hosts also push the result of an app's own call as a tool-result notification.
    if (echoToolResults) setTimeout(() => bridge.sendToolResult(result), 0);
    return result;
  };
  bridge.onupdatemodelcontext = async (params) => {
    log.modelContext.push(params);
    return {};
  };
  bridge.onsizechange = ({ width, height }) => {
    log.sizes.push({ width, height });
    if (height) iframe.style.height = `${height}px`;
  };
  bridge.onloggingmessage = (params) => log.logs.push(params);

  const initialized = new Promise((resolve) => { bridge.oninitialized = resolve; });
  await bridge.connect(new PostMessageTransport(iframe.contentWindow, iframe.contentWindow));
  iframe.src = appUrl;
  await initialized;
  log.appInfo = bridge.getAppVersion();
  log.appCapabilities = bridge.getAppCapabilities();
  await bridge.sendToolInput({ arguments: toolInput });
  await bridge.sendToolResult(toolResult);
};
