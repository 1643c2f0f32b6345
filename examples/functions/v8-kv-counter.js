// A Nex 0.2 style counter, deployed as type `v8`: host services answer synchronously, so
// `hostServices.kv.get` returns the stored bytes (or throws an Error whose `code` is 404),
// with no `await`. Counts its invocations under the key "count" and replies with the count.
(subject, payload) => {
  let count = 0;
  try {
    const stored = hostServices.kv.get('count');
    count = parseInt(String.fromCharCode(...stored), 10) || 0;
  } catch (error) {
    if (error.code !== 404) throw error;
  }
  count += 1;
  hostServices.kv.set('count', String(count));
  return count;
};
