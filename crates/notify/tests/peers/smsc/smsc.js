// A test SMSC for crates/notify/tests/sms_smpp.rs, on node-smpp's server.
//
//   node smsc.js PORT [SYSTEM_ID] [PASSWORD]
//
// Listens on 127.0.0.1:PORT and prints one JSON object per line on stdout:
//   {"event":"listening","port":N}
//   {"event":"bind","system_id":..,"ok":bool}
//   {"event":"submit_sm",...addresses, esm_class, data_coding,
//    short_message_hex, message_payload_hex, udh (hex of each IE), text
//    (node-smpp's own decoding), message_id, command_status}
//   {"event":"reassembled","ref":..,"total":..,"text":..,"part_lengths":[..]}
//   {"event":"receipt","message_id":..} and {"event":"deliver_sm_resp",..}
//   {"event":"enquire_link","at_ms":..}, {"event":"unbind"}, {"event":"close"}
//
// Destinations starting with 0000 are refused with ESME_RINVDSTADR and
// those starting with 9999 with ESME_RTHROTTLED, so the client's mapping
// of permanent and transient errors can be tested.
'use strict';

const smpp = require('smpp');

const port = Number(process.argv[2]);
const systemId = process.argv[3] || 'simguard';
const password = process.argv[4] || 'secret';
if (!port) {
  console.error('usage: node smsc.js PORT [SYSTEM_ID] [PASSWORD]');
  process.exit(2);
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// Keep the raw octets next to node-smpp's decoded text, so the test can
// check both what we put on the wire and how an SMSC reads it.
const originalFilter = smpp.PDU.prototype._filter;
smpp.PDU.prototype._filter = function (func) {
  if (func === 'decode') {
    if (Buffer.isBuffer(this.short_message)) {
      this._raw_short_message = Buffer.from(this.short_message);
    }
    if (Buffer.isBuffer(this.message_payload)) {
      this._raw_message_payload = Buffer.from(this.message_payload);
    }
  }
  return originalFilter.call(this, func);
};

const instance = Math.random().toString(16).slice(2, 8);
let counter = 0;
const concat = new Map();

function smppTime(d) {
  const p = (n) => String(n).padStart(2, '0');
  return (
    p(d.getUTCFullYear() % 100) + p(d.getUTCMonth() + 1) + p(d.getUTCDate()) +
    p(d.getUTCHours()) + p(d.getUTCMinutes())
  );
}

function textOf(field) {
  if (field === undefined || field === null) return null;
  if (typeof field === 'string') return field;
  if (Buffer.isBuffer(field)) return field.toString('hex');
  return typeof field.message === 'string' ? field.message : null;
}

function udhOf(field) {
  if (!field || !Array.isArray(field.udh)) return [];
  return field.udh.map((ie) => Buffer.from(ie).toString('hex'));
}

function reassemble(pdu, record) {
  const ie = (pdu.short_message && pdu.short_message.udh || [])
    .map((b) => Buffer.from(b))
    .find((b) => b[0] === 0x00 && b[1] === 3);
  if (!ie) return;
  const [ref, total, seq] = [ie[2], ie[3], ie[4]];
  const key = `${pdu.source_addr}|${pdu.destination_addr}|${ref}`;
  const entry = concat.get(key) || { parts: new Map() };
  entry.parts.set(seq, record);
  concat.set(key, entry);
  if (entry.parts.size !== total) return;
  concat.delete(key);
  const ordered = [];
  for (let i = 1; i <= total; i++) ordered.push(entry.parts.get(i));
  if (ordered.some((r) => !r)) {
    emit({ event: 'reassembly_error', ref, total, seqs: [...entry.parts.keys()] });
    return;
  }
  emit({
    event: 'reassembled',
    destination_addr: pdu.destination_addr,
    ref,
    total,
    data_coding: pdu.data_coding,
    text: ordered.map((r) => r.text).join(''),
    part_lengths: ordered.map((r) => r.short_message_hex.length / 2),
    message_ids: ordered.map((r) => r.message_id),
  });
}

function sendReceipt(session, submit, messageId, text) {
  const now = new Date();
  const snippet = (text || '').replace(/[^A-Za-z0-9 ]/g, '').slice(0, 20);
  const receipt =
    `id:${messageId} sub:001 dlvr:001 submit date:${smppTime(now)} ` +
    `done date:${smppTime(now)} stat:DELIVRD err:000 text:${snippet}`;
  session.deliver_sm(
    {
      source_addr_ton: submit.dest_addr_ton,
      source_addr_npi: submit.dest_addr_npi,
      source_addr: submit.destination_addr,
      dest_addr_ton: submit.source_addr_ton,
      dest_addr_npi: submit.source_addr_npi,
      destination_addr: submit.source_addr,
      esm_class: 0x04,
      data_coding: 0,
      short_message: Buffer.from(receipt, 'ascii'),
      receipted_message_id: messageId,
      message_state: 2,
    },
    (resp) => emit({ event: 'deliver_sm_resp', message_id: messageId, command_status: resp.command_status })
  );
  emit({ event: 'receipt', message_id: messageId, text: receipt });
}

const server = smpp.createServer((session) => {
  let bound = false;
  session.on('error', (e) => emit({ event: 'session_error', error: String(e) }));
  session.on('close', () => emit({ event: 'close' }));

  session.on('bind_transceiver', (pdu) => {
    const ok = pdu.system_id === systemId && pdu.password === password;
    emit({ event: 'bind', system_id: pdu.system_id, interface_version: pdu.interface_version, ok });
    if (!ok) {
      session.send(pdu.response({ command_status: smpp.ESME_RBINDFAIL }));
      session.close();
      return;
    }
    bound = true;
    session.send(pdu.response({ system_id: 'nodesmsc' }));
  });

  session.on('submit_sm', (pdu) => {
    if (!bound) {
      session.send(pdu.response({ command_status: smpp.ESME_RINVBNDSTS }));
      return;
    }
    let status = 0;
    if (pdu.destination_addr.startsWith('0000')) status = smpp.ESME_RINVDSTADR;
    if (pdu.destination_addr.startsWith('9999')) status = smpp.ESME_RTHROTTLED;
    const messageId = status ? null : `${instance}${(++counter).toString(16).padStart(4, '0')}`;
    const record = {
      event: 'submit_sm',
      service_type: pdu.service_type,
      source_addr: pdu.source_addr,
      source_addr_ton: pdu.source_addr_ton,
      source_addr_npi: pdu.source_addr_npi,
      destination_addr: pdu.destination_addr,
      dest_addr_ton: pdu.dest_addr_ton,
      dest_addr_npi: pdu.dest_addr_npi,
      esm_class: pdu.esm_class,
      data_coding: pdu.data_coding,
      registered_delivery: pdu.registered_delivery,
      short_message_hex: pdu._raw_short_message ? pdu._raw_short_message.toString('hex') : '',
      message_payload_hex: pdu._raw_message_payload ? pdu._raw_message_payload.toString('hex') : null,
      udh: udhOf(pdu.short_message),
      text: textOf(pdu.short_message),
      message_id: messageId,
      command_status: status,
    };
    emit(record);
    if (status) {
      session.send(pdu.response({ command_status: status }));
      return;
    }
    session.send(pdu.response({ message_id: messageId }));
    reassemble(pdu, record);
    if (pdu.registered_delivery & 0x03) {
      setTimeout(() => sendReceipt(session, pdu, messageId, record.text), 20);
    }
  });

  session.on('enquire_link', (pdu) => {
    emit({ event: 'enquire_link', seq: pdu.sequence_number, at_ms: Date.now() });
    session.send(pdu.response());
  });

  session.on('unbind', (pdu) => {
    emit({ event: 'unbind' });
    session.send(pdu.response());
    session.close();
  });
});

server.on('error', (e) => {
  console.error(`smsc: ${e}`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => emit({ event: 'listening', port }));
process.on('SIGTERM', () => process.exit(0));
