//! SIP text for the engine tests: one dialog between the switch ([`PBX`]) and a phone,
//! as [`Dialog`] builds it (INVITE with SDP, responses, in-dialog requests, CANCEL), with
//! the addresses the tests send it between. The messages go to [`super::engine_run::Run`].

use std::net::SocketAddr;

pub const PBX: &str = "10.0.0.1:5060";
pub const PHONE1: &str = "10.0.1.1:5060";
pub const PHONE2: &str = "10.0.1.2:5060";

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A small SIP message factory for one dialog between the switch and a phone.
#[derive(Clone)]
pub struct Dialog {
    pub call_id: String,
    pub caller: String,
    pub caller_tag: String,
    pub callee: String,
    pub callee_tag: String,
    pub ruri: String,
    pub extra: String,
}

pub fn inbound(call_id: &str, customer: &str, agent: &str) -> Dialog {
    Dialog {
        call_id: call_id.into(),
        caller: customer.into(),
        caller_tag: format!("c-{call_id}"),
        callee: agent.into(),
        callee_tag: format!("a-{call_id}-{agent}"),
        ruri: agent.into(),
        extra: String::new(),
    }
}

pub fn outbound(call_id: &str, agent: &str, dialled: &str) -> Dialog {
    Dialog {
        call_id: call_id.into(),
        caller: agent.into(),
        caller_tag: format!("a-{call_id}"),
        callee: dialled.into(),
        callee_tag: format!("r-{call_id}"),
        ruri: dialled.into(),
        extra: String::new(),
    }
}

pub const SDP_SENDRECV: &str = "v=0\r\no=- 1 1 IN IP4 10.0.1.1\r\ns=-\r\nc=IN IP4 10.0.1.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\na=sendrecv\r\n";
pub const SDP_SENDONLY: &str = "v=0\r\no=- 1 2 IN IP4 10.0.1.1\r\ns=-\r\nc=IN IP4 10.0.1.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\na=sendonly\r\n";

impl Dialog {
    pub fn with_header(mut self, h: &str) -> Dialog {
        self.extra.push_str(h);
        self.extra.push_str("\r\n");
        self
    }

    #[allow(clippy::too_many_arguments)]
    pub fn msg(
        &self,
        first: &str,
        cseq: u32,
        method: &str,
        from_callee: bool,
        to_tag: bool,
        branch: &str,
        body: &str,
    ) -> Vec<u8> {
        let (from_user, from_tag, to_user, to_tag_v) = if from_callee {
            (
                &self.callee,
                &self.callee_tag,
                &self.caller,
                &self.caller_tag,
            )
        } else {
            (
                &self.caller,
                &self.caller_tag,
                &self.callee,
                &self.callee_tag,
            )
        };
        let to = if to_tag || from_callee {
            format!("<sip:{to_user}@pbx>;tag={to_tag_v}")
        } else {
            format!("<sip:{to_user}@pbx>")
        };
        let ctype = if body.is_empty() {
            String::new()
        } else {
            "Content-Type: application/sdp\r\n".into()
        };
        format!(
            "{first}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{branch}\r\nFrom: <sip:{from_user}@pbx>;tag={from_tag}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\nContact: <sip:{from_user}@10.0.0.1>\r\n{}{ctype}Content-Length: {}\r\n\r\n{body}",
            self.call_id,
            self.extra,
            body.len()
        )
        .into_bytes()
    }

    pub fn invite(&self) -> Vec<u8> {
        self.msg(
            &format!("INVITE sip:{}@10.0.1.1 SIP/2.0", self.ruri),
            1,
            "INVITE",
            false,
            false,
            "inv",
            SDP_SENDRECV,
        )
    }
    pub fn response(
        &self,
        code: u16,
        cseq: u32,
        method: &str,
        branch: &str,
        body: &str,
    ) -> Vec<u8> {
        // Responses carry the request's From/To; the callee's tag is in To.
        let mut d = self.clone();
        d.extra.clear();
        let to_tag = code != 100;
        let mut m = d.msg(
            &format!("SIP/2.0 {code} Reason"),
            cseq,
            method,
            false,
            to_tag,
            branch,
            body,
        );
        if !to_tag {
            m = d.msg(
                &format!("SIP/2.0 {code} Reason"),
                cseq,
                method,
                false,
                false,
                branch,
                body,
            );
        }
        m
    }
    pub fn callee_response(&self, code: u16, cseq: u32, method: &str, branch: &str) -> Vec<u8> {
        // A response to a request the callee sent: From is the callee.
        self.msg(
            &format!("SIP/2.0 {code} Reason"),
            cseq,
            method,
            true,
            true,
            branch,
            "",
        )
    }
    pub fn cancel(&self) -> Vec<u8> {
        self.msg(
            &format!("CANCEL sip:{}@10.0.1.1 SIP/2.0", self.ruri),
            1,
            "CANCEL",
            false,
            false,
            "inv",
            "",
        )
    }
    pub fn request(
        &self,
        method: &str,
        cseq: u32,
        from_callee: bool,
        branch: &str,
        body: &str,
    ) -> Vec<u8> {
        let target = if from_callee {
            &self.caller
        } else {
            &self.callee
        };
        self.msg(
            &format!("{method} sip:{target}@10.0.0.1 SIP/2.0"),
            cseq,
            method,
            from_callee,
            true,
            branch,
            body,
        )
    }
}
