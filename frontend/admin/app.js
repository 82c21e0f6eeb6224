// The admin page: sign in with an admin key, then documents and jobs, API keys, adapters and evaluations.

import { ErrorAlert } from "../shared/alert.js";
import { ApiClient } from "../shared/api.js";
import { Session } from "../shared/session.js";
import { SignIn } from "../shared/signin.js";
import { Adapters } from "./adapters.js";
import { Documents } from "./documents.js";
import { Evals } from "./evals.js";
import { Keys } from "./keys.js";
import { Loop } from "./loop.js";

const $ = (id) => document.getElementById(id);
const session = new Session("admin");
const client = new ApiClient({ key: session.key });
const alert = new ErrorAlert($("admin-alert"));
let sections = [];

const signIn = new SignIn(
  { view: $("signin-view"), form: $("signin-form"), input: $("api-key"), alert: $("signin-alert") },
  session, client,
  (me) => (me.is_admin ? null : `The key “${me.name}” has no admin scope; ask an administrator for one.`),
);

/** Failures of any section: a revoked key goes back to sign-in, the rest show an alert with Retry. */
function fail(error, retry = null) {
  if (error && error.kind === "unauthorized") {
    signOut(error);
    return;
  }
  alert.show(error, retry);
}

function signOut(error = null) {
  for (const section of sections) section.stop && section.stop();
  sections = [];
  session.clear();
  client.key = "";
  alert.clear();
  $("admin-view").hidden = true;
  signIn.show(error);
}

async function loadAll() {
  alert.clear();
  const results = await Promise.allSettled(sections.map((section) => section.load()));
  const failed = results.find((r) => r.status === "rejected");
  if (failed) fail(failed.reason, loadAll);
}

signIn.onSignedIn = (me) => {
  $("who").textContent = `Signed in as ${me.name}`;
  $("admin-view").hidden = false;
  sections = [new Documents(client, fail), new Keys(client, fail, me), new Adapters(client, fail), new Evals(client, fail),
    new Loop(client, fail)];
  loadAll();
  $("admin-main").focus();
};
$("admin-main").tabIndex = -1;
$("signout").addEventListener("click", () => signOut());
signIn.resume();
