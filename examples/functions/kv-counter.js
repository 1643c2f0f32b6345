// Counts its invocations in the function's key-value bucket, under the key "count", and
// replies with the new count. Host-service calls return promises; a missing key rejects
// with an Error whose `code` is 404.
async (subject, payload) => {
  let count = 0;
  try {
    const stored = await hostServices.kv.get('count');
    count = parseInt(new TextDecoder().decode(stored), 10) || 0;
  } catch (error) {
    if (error.code !== 404) throw error;
  }
  count += 1;
  await hostServices.kv.set('count', String(count));
  return String(count);
};
