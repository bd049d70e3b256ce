#!/usr/bin/env node
// Peer client for the pacer benchmarks: the same workload driven through
// Bottleneck (https://github.com/SGrondin/bottleneck) and Node's global fetch.
//
//   node bottleneck_client.js SCENARIO URL N RATE CONCURRENCY
//
// SCENARIO is get, post or hold. Prints one JSON line on stdout.
"use strict";

const crypto = require("node:crypto");
const Bottleneck = require("bottleneck");

const MAX_RETRIES = 10;
const MAX_BACKOFF_MS = 60000;

function usage(message) {
  console.error(`bottleneck_client: ${message}`);
  console.error("usage: node bottleneck_client.js get|post|hold URL N RATE CONCURRENCY");
  process.exit(2);
}

function parseArgs(argv) {
  if (argv.length !== 5) usage(`expected 5 arguments, got ${argv.length}`);
  const [scenario, rawUrl, rawN, rawRate, rawConcurrency] = argv;

  if (!["get", "post", "hold"].includes(scenario)) usage(`SCENARIO: unknown scenario "${scenario}"`);

  let url;
  try {
    url = new URL(rawUrl);
  } catch {
    usage(`URL: not a URL: "${rawUrl}"`);
  }
  const loopback = /^127(\.\d{1,3}){3}$/.test(url.hostname) || url.hostname === "[::1]";
  if (url.protocol !== "http:" || !loopback) usage(`URL: must be an http:// loopback URL: "${rawUrl}"`);

  const n = Number(rawN);
  if (!/^\d+$/.test(rawN) || !Number.isSafeInteger(n)) usage(`N: not a non-negative integer: "${rawN}"`);
  const rate = Number(rawRate);
  if (rawRate.trim() === "" || !Number.isFinite(rate) || rate < 0) usage(`RATE: not a non-negative number: "${rawRate}"`);
  const concurrency = Number(rawConcurrency);
  if (!/^\d+$/.test(rawConcurrency) || !Number.isSafeInteger(concurrency)) {
    usage(`CONCURRENCY: not a non-negative integer: "${rawConcurrency}"`);
  }
  return { scenario, url: url.href, n, rate, concurrency };
}

class HttpError extends Error {
  constructor(response) {
    super(`HTTP ${response.status}`);
    this.status = response.status;
    this.retryAfter = response.headers.get("retry-after");
  }
}

// Retry-After is either delay-seconds or an HTTP-date.
function retryAfterMs(value) {
  if (value == null) return undefined;
  const seconds = Number(value);
  if (value.trim() !== "" && Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function retryable(error) {
  if (!(error instanceof HttpError)) return true; // network error: refused, reset, dropped mid-body
  return error.status === 429 || error.status >= 500;
}

const { scenario, url, n, rate, concurrency } = parseArgs(process.argv.slice(2));

const limiter = new Bottleneck({
  minTime: rate > 0 ? Math.ceil(1000 / rate) : 0,
  maxConcurrent: concurrency > 0 ? concurrency : null,
});

limiter.on("failed", (error, jobInfo) => {
  if (!retryable(error) || jobInfo.retryCount >= MAX_RETRIES) return undefined;
  const hinted = error instanceof HttpError ? retryAfterMs(error.retryAfter) : undefined;
  if (hinted !== undefined) return hinted;
  return Math.random() * Math.min(MAX_BACKOFF_MS, 1000 * 2 ** jobInfo.retryCount);
});

let attempts = 0;

async function request(init) {
  attempts++;
  const response = await fetch(url, init);
  await response.arrayBuffer(); // read the body so the connection is reused (and a mid-body drop fails here)
  if (!response.ok) throw new HttpError(response);
  return response.status;
}

function getJob() {
  return limiter.schedule(() => request({ method: "GET" }));
}

function postJob(i) {
  const body = JSON.stringify({ to: "+1555" + String(i).padStart(7, "0"), message: "m" + i });
  const idempotencyKey = crypto.randomUUID(); // one per item, reused by every retry of it
  return limiter.schedule(() =>
    request({
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": idempotencyKey },
      body,
    }),
  );
}

async function main() {
  if (scenario === "hold") {
    for (let i = 1; i <= n; i++) postJob(i).catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, 500));
    process.stdout.write(JSON.stringify({ queued: n }) + "\n");
    process.exit(0);
  }

  const jobs = [];
  for (let i = 1; i <= n; i++) jobs.push(scenario === "get" ? getJob() : postJob(i));
  const results = await Promise.allSettled(jobs);
  const ok = results.filter((r) => r.status === "fulfilled").length;
  process.stdout.write(JSON.stringify({ ok, failed: results.length - ok, attempts }) + "\n");
  process.exit(0);
}

main().catch((error) => {
  console.error(`bottleneck_client: ${error.stack || error}`);
  process.exit(1);
});
