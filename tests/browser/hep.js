// A scripted HEP v3 feed for the browser test: the SIP a capture agent reports for one
// inbound call between the switch and an agent's phone (the same messages as
// callwatch's loadgen CallSpec), and REGISTERs. Sent over UDP to the daemon on 127.0.0.1.
'use strict';

const dgram = require('node:dgram');

const SWITCH = { ip: '10.1.0.10', port: 5060 };

function chunk(type, value) {
  const b = Buffer.alloc(6 + value.length);
  b.writeUInt16BE(0, 0);
  b.writeUInt16BE(type, 2);
  b.writeUInt16BE(6 + value.length, 4);
  value.copy(b, 6);
  return b;
}

function u8(n) { return Buffer.from([n]); }
function u16(n) { const b = Buffer.alloc(2); b.writeUInt16BE(n); return b; }
function u32(n) { const b = Buffer.alloc(4); b.writeUInt32BE(n >>> 0); return b; }
function ip4(s) { return Buffer.from(s.split('.').map(Number)); }

/** One SIP message (or, with `proto` 5, a raw RTCP packet) in HEP v3, stamped with the
 * wall clock. */
function hep(src, dst, sip, proto = 1) {
  const now = Date.now();
  const body = Buffer.concat([
    chunk(0x0001, u8(2)),
    chunk(0x0003, ip4(src.ip)),
    chunk(0x0004, ip4(dst.ip)),
    chunk(0x0002, u8(17)),
    chunk(0x0007, u16(src.port)),
    chunk(0x0008, u16(dst.port)),
    chunk(0x0009, u32(Math.floor(now / 1000))),
    chunk(0x000a, u32((now % 1000) * 1000)),
    chunk(0x000b, u8(proto)),
    chunk(0x000c, u32(7)),
    chunk(0x000f, typeof sip === 'string' ? Buffer.from(sip, 'utf8') : sip),
  ]);
  const head = Buffer.from('HEP3\0\0', 'latin1');
  const out = Buffer.concat([head, body]);
  out.writeUInt16BE(out.length, 4);
  return out;
}

function finish(head, body, type) {
  const ct = body ? `Content-Type: ${type}\r\n` : '';
  return `${head}${ct}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** The messages of one inbound call from the switch to `agent`'s phone. */
class Call {
  constructor(callId, agent, customer) {
    this.id = callId;
    this.agent = agent;
    this.customer = customer;
    this.phone = { ip: `10.1.9.${10 + (Number(agent) % 200)}`, port: 5060 };
  }
  via(branch, fromPhone) {
    const h = fromPhone ? this.phone : SWITCH;
    return `Via: SIP/2.0/UDP ${h.ip}:${h.port};branch=z9hG4bK-${this.id}-${branch}\r\n`;
  }
  sdp(fromPhone) {
    const ip = fromPhone ? this.phone.ip : SWITCH.ip;
    const port = fromPhone ? 30000 : 10000;
    return `v=0\r\no=- 1 1 IN IP4 ${ip}\r\ns=-\r\nc=IN IP4 ${ip}\r\nt=0 0\r\nm=audio ${port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n`;
  }
  invite() {
    return finish(
      `INVITE sip:${this.agent}@${this.phone.ip}:${this.phone.port} SIP/2.0\r\n${this.via('inv', false)}Max-Forwards: 70\r\n` +
        `From: <sip:${this.customer}@${SWITCH.ip}>;tag=c-${this.id}\r\nTo: <sip:${this.agent}@${SWITCH.ip}>\r\n` +
        `Call-ID: ${this.id}\r\nCSeq: 1 INVITE\r\nContact: <sip:${this.customer}@${SWITCH.ip}:${SWITCH.port}>\r\n`,
      this.sdp(false),
      'application/sdp',
    );
  }
  inviteResponse(code, reason) {
    const tag = code === 100 ? '' : `;tag=p-${this.id}`;
    return finish(
      `SIP/2.0 ${code} ${reason}\r\n${this.via('inv', false)}From: <sip:${this.customer}@${SWITCH.ip}>;tag=c-${this.id}\r\n` +
        `To: <sip:${this.agent}@${SWITCH.ip}>${tag}\r\nCall-ID: ${this.id}\r\nCSeq: 1 INVITE\r\n` +
        `Contact: <sip:${this.agent}@${this.phone.ip}:${this.phone.port}>\r\n`,
      code === 200 ? this.sdp(true) : '',
      'application/sdp',
    );
  }
  ack() {
    return finish(
      `ACK sip:${this.agent}@${this.phone.ip}:${this.phone.port} SIP/2.0\r\n${this.via('ack', false)}Max-Forwards: 70\r\n` +
        `From: <sip:${this.customer}@${SWITCH.ip}>;tag=c-${this.id}\r\nTo: <sip:${this.agent}@${SWITCH.ip}>;tag=p-${this.id}\r\n` +
        `Call-ID: ${this.id}\r\nCSeq: 1 ACK\r\n`,
      '',
      '',
    );
  }
  /** The customer's BYE (switch side) and the phone's 200. */
  bye() {
    const hdr = `From: <sip:${this.customer}@${SWITCH.ip}>;tag=c-${this.id}\r\nTo: <sip:${this.agent}@${SWITCH.ip}>;tag=p-${this.id}\r\nCall-ID: ${this.id}\r\nCSeq: 2 BYE\r\n`;
    return [
      finish(`BYE sip:${this.agent}@${this.phone.ip}:${this.phone.port} SIP/2.0\r\n${this.via('bye2c', false)}Max-Forwards: 70\r\n${hdr}`, '', ''),
      finish(`SIP/2.0 200 OK\r\n${this.via('bye2c', false)}${hdr}`, '', ''),
    ];
  }
  /** The agent's BYE (phone side, no survey transfer before it) and the switch's 200. */
  byeFromPhone() {
    const hdr = `From: <sip:${this.agent}@${SWITCH.ip}>;tag=p-${this.id}\r\nTo: <sip:${this.customer}@${SWITCH.ip}>;tag=c-${this.id}\r\nCall-ID: ${this.id}\r\nCSeq: 1 BYE\r\n`;
    return [
      finish(`BYE sip:${this.customer}@${SWITCH.ip}:${SWITCH.port} SIP/2.0\r\n${this.via('bye2s', true)}Max-Forwards: 70\r\n${hdr}`, '', ''),
      finish(`SIP/2.0 200 OK\r\n${this.via('bye2s', true)}${hdr}`, '', ''),
    ];
  }
}

function register(agent, cseq, expires) {
  const phone = { ip: `10.1.9.${10 + (Number(agent) % 200)}`, port: 5060 };
  const via = `Via: SIP/2.0/UDP ${phone.ip}:${phone.port};branch=z9hG4bK-reg-${agent}-${cseq}\r\n`;
  const common = `From: <sip:${agent}@${SWITCH.ip}>;tag=r-${agent}\r\nCall-ID: reg-${agent}@${phone.ip}\r\nCSeq: ${cseq} REGISTER\r\nContact: <sip:${agent}@${phone.ip}:${phone.port}>;expires=${expires}\r\n`;
  return {
    phone,
    req: `REGISTER sip:${SWITCH.ip} SIP/2.0\r\n${via}Max-Forwards: 70\r\nTo: <sip:${agent}@${SWITCH.ip}>\r\n${common}Expires: ${expires}\r\nContent-Length: 0\r\n\r\n`,
    resp: `SIP/2.0 200 OK\r\n${via}To: <sip:${agent}@${SWITCH.ip}>;tag=reg-ok\r\n${common}Content-Length: 0\r\n\r\n`,
  };
}

/** A UDP sender to the daemon's HEP port. */
class Feed {
  constructor(port) {
    this.port = port;
    this.sock = dgram.createSocket('udp4');
  }
  send(src, dst, sip) {
    return new Promise((resolve, reject) => {
      this.sock.send(hep(src, dst, sip), this.port, '127.0.0.1', (e) => (e ? reject(e) : resolve()));
    });
  }
  fromSwitch(call, sip) { return this.send(SWITCH, call.phone, sip); }
  fromPhone(call, sip) { return this.send(call.phone, SWITCH, sip); }
  async ring(call) {
    await this.fromSwitch(call, call.invite());
    await this.fromPhone(call, call.inviteResponse(180, 'Ringing'));
  }
  async answer(call) {
    await this.fromPhone(call, call.inviteResponse(200, 'OK'));
    await this.fromSwitch(call, call.ack());
  }
  async hangUp(call) {
    const [bye, ok] = call.bye();
    await this.fromSwitch(call, bye);
    await this.fromPhone(call, ok);
  }
  /**
   * The phone's RTCP receiver report (RFC 3550 §6.4.2) about the switch's audio, sent from
   * its SDP media port + 1 to the switch's: `lostPct` fraction lost, `jitter` in
   * timestamp units (8 kHz). What an SBC or rtpengine sends as HEP type 5.
   */
  async rtcpFromPhone(call, lostPct, jitter) {
    const rr = Buffer.alloc(32);
    rr.writeUInt8(0x81, 0); // V=2, one report block
    rr.writeUInt8(201, 1); // RR
    rr.writeUInt16BE(7, 2); // length in 32-bit words - 1
    rr.writeUInt32BE(0x0a0b0c0d, 4); // the phone's SSRC
    rr.writeUInt32BE(0x1a2b3c4d, 8); // the switch's stream
    rr.writeUInt8(Math.round((lostPct * 256) / 100), 12);
    rr.writeUInt32BE(1000, 16); // highest sequence number
    rr.writeUInt32BE(jitter, 20);
    const from = { ip: call.phone.ip, port: 30001 };
    const to = { ip: SWITCH.ip, port: 10001 };
    await new Promise((resolve, reject) => {
      this.sock.send(hep(from, to, rr, 5), this.port, '127.0.0.1', (e) => (e ? reject(e) : resolve()));
    });
  }
  /** The agent hangs up first (a BYE from the phone). */
  async agentHangsUp(call) {
    const [bye, ok] = call.byeFromPhone();
    await this.fromPhone(call, bye);
    await this.fromSwitch(call, ok);
  }
  async register(agent, cseq, expires) {
    const r = register(agent, cseq, expires);
    await this.send(r.phone, SWITCH, r.req);
    await this.send(SWITCH, r.phone, r.resp);
  }
  close() { this.sock.close(); }
}

module.exports = { Call, Feed };
