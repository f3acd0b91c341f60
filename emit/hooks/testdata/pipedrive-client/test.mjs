// Drives pollhook's Pipedrive dialect (/v1/webhooks) with the official
// pipedrive npm client: adds a webhook, lists the webhooks, deletes the
// webhook and lists them again. It prints the results as one JSON object
// and exits non-zero on any failure.
//
// Environment:
//   POLLHOOK_URL      pollhook's base URL, such as http://127.0.0.1:8080
//   POLLHOOK_TOKEN    pollhook's http.token
//   SUBSCRIPTION_URL  the subscription_url of the webhook
//
// Run `npm ci` in this directory first.
import pipedrive from 'pipedrive/v1';

const { Configuration, WebhooksApi } = pipedrive;
const { POLLHOOK_URL: base, POLLHOOK_TOKEN: token, SUBSCRIPTION_URL: target } = process.env;
if (!base || !token || !target) {
  console.error('set POLLHOOK_URL, POLLHOOK_TOKEN and SUBSCRIPTION_URL');
  process.exit(2);
}

function check(ok, what, value) {
  if (!ok) {
    throw new Error(`${what}: unexpected result ${JSON.stringify(value)}`);
  }
}

// basePath replaces https://api.pipedrive.com/v1; apiKey is sent as the
// x-api-token header.
const api = new WebhooksApi(new Configuration({ apiKey: token, basePath: `${base}/v1` }));

try {
  const added = await api.addWebhook({
    AddWebhookRequest: {
      subscription_url: target,
      event_action: 'updated',
      event_object: 'deal',
      name: 'pollhook compatibility test',
      http_auth_user: 'hook-user',
      http_auth_password: 'hook-password',
      version: '1.0',
    },
  });
  const id = added?.data?.id;
  check(added.success === true && Number.isInteger(id) && added.data.is_active === 1 &&
    added.data.event_action === 'updated' && added.data.event_object === 'deal' &&
    added.data.subscription_url === target, 'addWebhook', added);

  const listed = await api.getWebhooks();
  check(listed.success === true && Array.isArray(listed.data) &&
    listed.data.some((w) => w.id === id && w.http_auth_user === 'hook-user'), 'getWebhooks', listed);

  const deleted = await api.deleteWebhook({ id });
  check(deleted.success === true, 'deleteWebhook', deleted);

  const after = await api.getWebhooks();
  check(after.success === true && !after.data.some((w) => w.id === id), 'getWebhooks after delete', after);

  console.log(JSON.stringify({ added: added.data, listed: listed.data, deleted, after: after.data }));
} catch (err) {
  // The client rejects with the response body when there is one.
  const detail = err instanceof Error ? err.message : JSON.stringify(err);
  console.error(`pipedrive client against ${base}: ${detail}`);
  process.exit(1);
}
