// sandbox.agent against a real server, driven by the built-in mock agent:
// the whole event sequence of a turn (permission, question, usage), follow-up
// prompts, kill, a rejected permission, attach with its scrollback, a
// stream that drops and is resumed after the last sequence, and the errors.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Sandbox, AgentSession, ConflictError, NotFoundError, WarrenError } from '@warren-sh/sdk';
import { setup, eventually } from './harness.mjs';

const env = await setup();

/** Waits until `events` holds one matching `match`, and returns it. */
function waitFor(events, match, what, timeoutMs = 30_000) {
  return eventually(() => events.find(match), timeoutMs, what);
}

/** Asserts sequences 1, 2, … n without gaps or repeats. */
function assertContiguous(events) {
  assert.deepEqual(
    events.map((e) => e.sequence),
    events.map((_, i) => i + 1),
  );
}

/** The text of an item's `item.completed`. */
function itemText(events, itemId) {
  const done = events.find((e) => e.type === 'item.completed' && e.data.item.item_id === itemId);
  return done?.data.item.content.map((c) => c.text ?? '').join('');
}

describe('agent sessions', { skip: env.skip }, () => {
  let sbx;
  before(async () => {
    sbx = await Sandbox.create(env.opts);
  });
  after(async () => {
    await sbx?.kill();
  });

  it('lists the agents with their capabilities', async () => {
    const agents = await sbx.agent.agents();
    assert.deepEqual(agents.map((a) => a.agent).sort(), ['claude', 'codex', 'mock', 'opencode']);
    const mock = agents.find((a) => a.agent === 'mock');
    assert.equal(mock.installed, true);
    assert.equal(mock.capabilities.permissions, true);
    assert.equal(mock.capabilities.streamingDeltas, true);
    assert.equal(agents.find((a) => a.agent === 'claude').installed, false);
  });

  it('runs the mock through permissions, a question, a follow-up and a kill', async () => {
    const events = [];
    const prompt = 'please ask a question';
    const session = await sbx.agent.start({
      agent: 'mock',
      prompt,
      permissionMode: 'default',
      onEvent: (e) => events.push(e),
    });
    assert.ok(session instanceof AgentSession);
    assert.match(session.sessionId, /^ses_/);
    assert.equal(session.info.agent, 'mock');
    assert.equal(session.info.permissionMode, 'default');

    const perm = await waitFor(events, (e) => e.type === 'permission.requested', 'permission.requested');
    assert.equal(perm.data.tool, 'Write');
    assert.match(perm.data.permission_id, /^perm_/);
    assert.equal((await session.refresh()).state, 'waiting');
    await session.respond(perm.data.permission_id, 'once');

    const question = await waitFor(events, (e) => e.type === 'question.requested', 'question.requested');
    assert.deepEqual(question.data.options, ['yes', 'no']);
    await session.respond(question.data.question_id, ['yes']);

    await waitFor(events, (e) => e.type === 'usage', 'usage');
    await eventually(async () => (await session.refresh()).state === 'idle', 10_000, 'idle');
    assert.equal(await sbx.files.read(`${session.info.cwd}/mock-turn-1.txt`), prompt);

    const types = new Set(events.map((e) => e.type));
    for (const type of [
      'session.started',
      'item.started',
      'item.delta',
      'item.completed',
      'permission.requested',
      'permission.resolved',
      'question.requested',
      'question.resolved',
      'usage',
    ]) {
      assert.ok(types.has(type), `no ${type} among ${[...types].join(', ')}`);
    }
    assertContiguous(events);
    assert.equal(events[0].type, 'session.started');
    assert.ok(events.every((e) => e.sessionId === session.sessionId && e.time instanceof Date));
    assert.equal(events.find((e) => e.type === 'permission.resolved').data.decision, 'once');
    assert.deepEqual(events.find((e) => e.type === 'question.resolved').data.answers, ['yes']);
    assert.match(itemText(events, 'itm_1_done'), /You answered yes/);
    // The deltas add up to the completed message.
    const deltas = events.filter((e) => e.type === 'item.delta' && e.data.item_id === 'itm_1_reply');
    assert.equal(deltas.map((e) => e.data.delta).join(''), itemText(events, 'itm_1_reply'));

    // A follow-up: the mock remembers the first prompt, asks again (answered
    // `always` this time) and reports an error.
    const before = events.length;
    const sent = await session.sendPrompt('now an error please');
    assert.equal(sent.id, session.sessionId);
    const perm2 = await waitFor(
      events,
      (e) => e.sequence > before && e.type === 'permission.requested',
      'second permission.requested',
    );
    await session.respond(perm2.data.permission_id, 'always');
    await waitFor(events, (e) => e.sequence > before && e.type === 'usage', 'second usage');
    assert.ok(events.some((e) => e.sequence > before && e.type === 'error'), 'no error event');
    assert.match(itemText(events, 'itm_2_reply'), /^Turn 2\. You said: now an error please\. Earlier: please ask a question\./);
    assertContiguous(events);

    const killed = await session.kill();
    assert.equal(killed.state, 'ended');
    const end = await session.done;
    assert.equal(end.reason, 'killed');
    assert.equal(end.session.state, 'ended');
    assert.ok(end.session.endedAt instanceof Date);
    assert.equal(events.at(-1).type, 'session.ended');
    assertContiguous(events);

    // Ended: no more prompts.
    await assert.rejects(session.sendPrompt('too late'), (err) => {
      assert.ok(err instanceof ConflictError);
      assert.equal(err.code, 'session_ended');
      return true;
    });
    // The transcript is the mock's gzip history.
    const gz = await session.transcript();
    assert.ok(gz instanceof Uint8Array);
    assert.deepEqual([...gz.slice(0, 2)], [0x1f, 0x8b]);
    // The whole stream again, through the iterator.
    const replayed = [];
    for await (const e of session.events()) replayed.push(e.sequence);
    assert.deepEqual(replayed, events.map((e) => e.sequence));
  });

  it('leaves the file unwritten when the permission is rejected', async () => {
    const events = [];
    const session = await sbx.agent.start({
      agent: 'mock',
      prompt: 'reject this',
      cwd: '/tmp',
      onEvent: (e) => events.push(e),
    });
    const perm = await waitFor(events, (e) => e.type === 'permission.requested', 'permission.requested');
    await session.respond(perm.data.permission_id, 'reject');
    await waitFor(events, (e) => e.type === 'usage', 'usage');
    const result = events.find((e) => e.type === 'item.completed' && e.data.item.kind === 'tool_result');
    assert.equal(result.data.item.status, 'rejected');
    assert.equal(await sbx.files.exists('/tmp/mock-turn-1.txt'), false);
    await session.kill();
    assert.equal((await session.done).reason, 'killed');
  });

  it('attaches with the scrollback first, then live events', async () => {
    const first = await sbx.agent.start({ agent: 'mock', prompt: 'hello', permissionMode: 'bypass' });
    await eventually(async () => (await first.refresh()).state === 'idle', 30_000, 'idle');
    first.close();
    await assert.rejects(first.done, WarrenError);
    const existing = first.info.lastSequence;
    assert.ok(existing > 5);

    const events = [];
    let atScrollbackEnd;
    const attached = await sbx.agent.attach(first.sessionId, {
      after: 0,
      onEvent: (e) => events.push(e),
      onScrollbackEnd: () => (atScrollbackEnd = events.length),
    });
    await eventually(() => atScrollbackEnd !== undefined, 10_000, 'onScrollbackEnd');
    assert.equal(atScrollbackEnd, existing);
    assertContiguous(events);

    await attached.sendPrompt('again');
    await waitFor(events, (e) => e.sequence > existing && e.type === 'usage', 'live usage');
    assertContiguous(events);
    assert.match(itemText(events, 'itm_2_reply'), /Earlier: hello\./);

    // Attach from the middle: only later events.
    const later = [];
    const middle = await sbx.agent.attach(first.sessionId, { after: existing, onEvent: (e) => later.push(e) });
    await eventually(() => later.some((e) => e.type === 'usage'), 10_000, 'events after the middle');
    assert.equal(later[0].sequence, existing + 1);

    const sessions = await sbx.agent.list();
    assert.ok(sessions.some((s) => s.id === first.sessionId));
    assert.equal((await sbx.agent.get(first.sessionId)).lastSequence, events.at(-1).sequence);

    await attached.kill();
    assert.equal((await attached.done).reason, 'killed');
    assert.equal((await middle.done).reason, 'killed');
  });

  it('resumes a dropped event stream after the last sequence', async () => {
    // A fetch whose event streams break after a few chunks, twice: the
    // network failing, not the server.
    let cuts = 0;
    const flaky = async (url, init) => {
      const response = await fetch(url, init);
      if (!String(url).includes('/events?') || cuts >= 2) return response;
      cuts++;
      const reader = response.body.getReader();
      let chunks = 0;
      const body = new ReadableStream({
        async pull(controller) {
          if (chunks++ >= 3) {
            await reader.cancel();
            controller.error(new TypeError('terminated'));
            return;
          }
          const { value, done } = await reader.read();
          if (done) controller.close();
          else controller.enqueue(value);
        },
      });
      return new Response(body, { status: response.status, headers: response.headers });
    };
    const flakySbx = await Sandbox.connect(sbx.sandboxId, { ...env.opts, fetch: flaky });
    const events = [];
    const session = await flakySbx.agent.start({
      agent: 'mock',
      prompt: 'slow and think',
      permissionMode: 'acceptEdits',
      onEvent: (e) => events.push(e),
    });
    await waitFor(events, (e) => e.type === 'usage', 'usage', 60_000);
    assert.equal(cuts, 2);
    assertContiguous(events);
    assert.ok(events.some((e) => e.type === 'item.completed' && e.data.item.kind === 'reasoning'));
    assert.equal(await sbx.files.read(`${session.info.cwd}/mock-turn-1.txt`), 'slow and think');
    await session.kill();
    assert.equal((await session.done).reason, 'killed');
    assertContiguous(events);
  });

  it('interrupts a slow turn', async () => {
    const events = [];
    const session = await sbx.agent.start({
      agent: 'mock',
      prompt: 'slow please',
      permissionMode: 'plan',
      onEvent: (e) => events.push(e),
    });
    await waitFor(events, (e) => e.type === 'item.delta', 'a delta');
    await session.interrupt();
    const status = await waitFor(
      events,
      (e) => e.type === 'item.completed' && e.data.item.kind === 'status',
      'the interrupted status item',
    );
    assert.equal(status.data.item.status, 'interrupted');
    await eventually(async () => (await session.refresh()).state === 'idle', 10_000, 'idle');
    await session.kill();
    await session.done;
  });

  it('moves a transcript to another session with resume', async () => {
    const first = await sbx.agent.start({ agent: 'mock', prompt: 'remember me', permissionMode: 'bypass' });
    await eventually(async () => (await first.refresh()).state === 'idle', 30_000, 'idle');
    const gz = await first.transcript();
    await first.kill();
    const native = await sbx.agent.uploadTranscript('mock', gz);
    assert.equal(typeof native, 'string');
    const events = [];
    const second = await sbx.agent.start({
      agent: 'mock',
      prompt: 'and now',
      permissionMode: 'bypass',
      resume: native,
      onEvent: (e) => events.push(e),
    });
    await waitFor(events, (e) => e.type === 'usage', 'usage');
    assert.match(itemText(events, 'itm_2_reply'), /Earlier: remember me\./);
    await second.kill();
    await assert.rejects(sbx.agent.uploadTranscript('mock', new Uint8Array([1, 2, 3])), (err) => {
      assert.equal(err.code, 'invalid_transcript');
      return true;
    });
  });

  it('reports unknown and missing agents and sessions with their codes', async () => {
    await assert.rejects(sbx.agent.start({ agent: 'nope', prompt: 'hi' }), (err) => {
      assert.ok(err instanceof NotFoundError);
      assert.equal(err.code, 'agent_not_found');
      assert.equal(err.status, 404);
      return true;
    });
    await assert.rejects(sbx.agent.start({ agent: 'claude', prompt: 'hi' }), (err) => {
      assert.ok(err instanceof ConflictError);
      assert.equal(err.code, 'agent_not_installed');
      assert.equal(err.status, 409);
      return true;
    });
    await assert.rejects(sbx.agent.get('ses_doesnotexist'), (err) => {
      assert.ok(err instanceof NotFoundError);
      assert.equal(err.code, 'session_not_found');
      return true;
    });
    const session = await sbx.agent.start({ agent: 'mock' });
    await assert.rejects(session.respond('perm_nothing', 'once'), (err) => {
      assert.equal(err.code, 'request_not_found');
      return true;
    });
    await assert.rejects(session.respond('xyz', 'once'), TypeError);
    await session.kill();
  });
});
