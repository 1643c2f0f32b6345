// A JavaScript function for Nex (type `javascript`, or Nex's `v8`): the script evaluates to
// a function of the trigger subject and the payload (a Uint8Array). It replies with JSON.
(subject, payload) => ({
  triggered_on: subject,
  payload: new TextDecoder().decode(payload),
});
