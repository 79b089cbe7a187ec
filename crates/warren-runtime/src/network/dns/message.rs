//! Just enough of the DNS wire format (RFC 1035) for a policy-checking
//! forwarder: the question of a query, the A records of an answer, and
//! error replies. Everything else passes through as bytes.

use std::net::Ipv4Addr;

/// Header length.
const HEADER: usize = 12;
/// Longest name on the wire.
const MAX_NAME: usize = 255;
/// Most compression pointers followed in one name (loops are refused).
const MAX_JUMPS: usize = 32;

/// Response codes this forwarder answers with itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcode {
    /// The upstream failed or did not answer.
    ServFail = 2,
    /// Not a standard query.
    NotImp = 4,
    /// The sandbox's policy does not admit the name.
    Refused = 5,
}

/// The question of a standard query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// Query id.
    pub id: u16,
    /// The name asked for, lower case, without the trailing dot.
    pub name: String,
    /// QTYPE.
    pub qtype: u16,
}

/// Why a message is not understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Shorter than its contents say.
    #[error("truncated message")]
    Truncated,
    /// A response, or a query with other than one question.
    #[error("not a query with one question")]
    NotAQuery,
    /// An opcode other than QUERY.
    #[error("opcode {0} is not a standard query")]
    Opcode(u8),
    /// A name is malformed (too long, a pointer loop, a bad label type).
    #[error("malformed name")]
    BadName,
}

fn u16_at(msg: &[u8], at: usize) -> Result<u16, ParseError> {
    msg.get(at..at + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or(ParseError::Truncated)
}

fn u32_at(msg: &[u8], at: usize) -> Result<u32, ParseError> {
    msg.get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(ParseError::Truncated)
}

/// Parses the question of a query.
pub fn parse_query(msg: &[u8]) -> Result<Question, ParseError> {
    if msg.len() < HEADER {
        return Err(ParseError::Truncated);
    }
    let id = u16_at(msg, 0)?;
    let flags = u16_at(msg, 2)?;
    let opcode = ((flags >> 11) & 0xf) as u8;
    if flags & 0x8000 != 0 || u16_at(msg, 4)? != 1 {
        return Err(ParseError::NotAQuery);
    }
    if opcode != 0 {
        return Err(ParseError::Opcode(opcode));
    }
    let (name, end) = read_name(msg, HEADER)?;
    let qtype = u16_at(msg, end)?;
    u16_at(msg, end + 2)?;
    Ok(Question { id, name, qtype })
}

/// The A records of a response's answer section, with their TTLs.
pub fn answer_addresses(msg: &[u8]) -> Result<Vec<(Ipv4Addr, u32)>, ParseError> {
    if msg.len() < HEADER {
        return Err(ParseError::Truncated);
    }
    let qdcount = u16_at(msg, 4)?;
    let ancount = u16_at(msg, 6)?;
    let mut at = HEADER;
    for _ in 0..qdcount {
        at = skip_name(msg, at)? + 4;
    }
    let mut out = Vec::new();
    for _ in 0..ancount {
        at = skip_name(msg, at)?;
        let rtype = u16_at(msg, at)?;
        let class = u16_at(msg, at + 2)?;
        let ttl = u32_at(msg, at + 4)?;
        let len = u16_at(msg, at + 8)? as usize;
        let data = msg
            .get(at + 10..at + 10 + len)
            .ok_or(ParseError::Truncated)?;
        if rtype == 1 && class == 1 && len == 4 {
            out.push((Ipv4Addr::new(data[0], data[1], data[2], data[3]), ttl));
        }
        at += 10 + len;
    }
    Ok(out)
}

/// The response id and question must match the query's.
pub fn answers(query: &Question, response: &[u8]) -> bool {
    let Ok(flags) = u16_at(response, 2) else {
        return false;
    };
    u16_at(response, 0) == Ok(query.id)
        && flags & 0x8000 != 0
        && parse_question_of_response(response)
            .is_some_and(|(name, qtype)| name == query.name && qtype == query.qtype)
}

fn parse_question_of_response(msg: &[u8]) -> Option<(String, u16)> {
    if u16_at(msg, 4).ok()? != 1 {
        return None;
    }
    let (name, end) = read_name(msg, HEADER).ok()?;
    Some((name, u16_at(msg, end).ok()?))
}

/// A reply to `query` (the raw query) with `rcode` and no records: the
/// query's header and question, flagged as a response.
pub fn error_reply(query: &[u8], rcode: Rcode) -> Vec<u8> {
    let mut out = Vec::with_capacity(query.len().max(HEADER));
    if query.len() < HEADER {
        out.extend_from_slice(&[0u8; HEADER]);
        let n = query.len().min(2);
        out[..n].copy_from_slice(&query[..n]);
    } else {
        let end = read_name(query, HEADER)
            .ok()
            .map(|(_, end)| end + 4)
            .filter(|&end| end <= query.len() && u16_at(query, 4) == Ok(1));
        match end {
            Some(end) => out.extend_from_slice(&query[..end]),
            None => out.extend_from_slice(&query[..HEADER]),
        }
        if end.is_none() {
            out[4..6].copy_from_slice(&0u16.to_be_bytes());
        }
    }
    // QR, the query's opcode and RD, RA; no AA, TC.
    let flags = u16::from_be_bytes([out[2], out[3]]);
    let flags = 0x8000 | (flags & 0x7900) | 0x0080 | rcode as u16;
    out[2..4].copy_from_slice(&flags.to_be_bytes());
    for counts in out[6..12].chunks_mut(2) {
        counts.copy_from_slice(&[0, 0]);
    }
    out
}

fn skip_name(msg: &[u8], at: usize) -> Result<usize, ParseError> {
    read_name(msg, at).map(|(_, end)| end)
}

/// Reads a possibly compressed name at `at`; returns it and the offset just
/// past it (past the first pointer, if any).
fn read_name(msg: &[u8], mut at: usize) -> Result<(String, usize), ParseError> {
    let mut name = String::new();
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *msg.get(at).ok_or(ParseError::Truncated)? as usize;
        match len & 0xc0 {
            0x00 if len == 0 => {
                return Ok((name, end.unwrap_or(at + 1)));
            }
            0x00 => {
                let label = msg.get(at + 1..at + 1 + len).ok_or(ParseError::Truncated)?;
                if !name.is_empty() {
                    name.push('.');
                }
                for &b in label {
                    name.push(b.to_ascii_lowercase() as char);
                }
                if name.len() > MAX_NAME {
                    return Err(ParseError::BadName);
                }
                at += 1 + len;
            }
            0xc0 => {
                let target = (u16_at(msg, at)? & 0x3fff) as usize;
                end.get_or_insert(at + 2);
                jumps += 1;
                if jumps > MAX_JUMPS || target >= msg.len() {
                    return Err(ParseError::BadName);
                }
                at = target;
            }
            _ => return Err(ParseError::BadName),
        }
    }
}

/// Encodes a query for `name` (tests and the benchmark's client).
pub fn encode_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&0x0100u16.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response to `query` with a CNAME (compressed) and two A records.
    fn response(query: &[u8]) -> Vec<u8> {
        let mut r = query.to_vec();
        r[2] = 0x81;
        r[3] = 0x80;
        r[6..8].copy_from_slice(&3u16.to_be_bytes());
        // CNAME: name = pointer to the question, target "x" + pointer.
        r.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 4, 1, b'x', 0xc0, 12]);
        let target = r.len() - 4;
        for (ip, ttl) in [([192, 0, 2, 7], 30u32), ([192, 0, 2, 8], 90)] {
            r.extend_from_slice(&[0xc0 | (target >> 8) as u8, target as u8, 0, 1, 0, 1]);
            r.extend_from_slice(&ttl.to_be_bytes());
            r.extend_from_slice(&[0, 4]);
            r.extend_from_slice(&ip);
        }
        r
    }

    #[test]
    fn queries_and_answers_parse() {
        let q = encode_query(0x1234, "Example.Test.", 1);
        let question = parse_query(&q).unwrap();
        assert_eq!(
            question,
            Question {
                id: 0x1234,
                name: "example.test".into(),
                qtype: 1
            }
        );
        let r = response(&q);
        assert!(answers(&question, &r));
        assert_eq!(
            answer_addresses(&r).unwrap(),
            vec![
                (Ipv4Addr::new(192, 0, 2, 7), 30),
                (Ipv4Addr::new(192, 0, 2, 8), 90)
            ]
        );
        let mut other = r.clone();
        other[1] ^= 1;
        assert!(!answers(&question, &other));
    }

    #[test]
    fn error_replies_keep_the_question() {
        let q = encode_query(7, "a.example", 28);
        let reply = error_reply(&q, Rcode::Refused);
        assert_eq!(reply.len(), q.len());
        assert_eq!(&reply[..2], &[0, 7]);
        assert_eq!(reply[3] & 0x0f, 5);
        assert!(reply[2] & 0x80 != 0);
        assert_eq!(
            parse_question_of_response(&reply),
            Some(("a.example".into(), 28))
        );
        let short = error_reply(&[1, 2, 3], Rcode::ServFail);
        assert_eq!(short.len(), 12);
        assert_eq!(&short[..2], &[1, 2]);
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        let mut loop_ptr = encode_query(1, "a", 1);
        loop_ptr.truncate(12);
        loop_ptr.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(parse_query(&loop_ptr), Err(ParseError::BadName));
        assert_eq!(parse_query(&[0; 5]), Err(ParseError::Truncated));
        let mut response = encode_query(1, "a", 1);
        response[2] |= 0x80;
        assert_eq!(parse_query(&response), Err(ParseError::NotAQuery));
        let mut notify = encode_query(1, "a", 1);
        notify[2] = 4 << 3;
        assert_eq!(parse_query(&notify), Err(ParseError::Opcode(4)));
        for len in 0..40 {
            let r = response_prefix(len);
            let _ = answer_addresses(&r);
            let _ = parse_query(&r);
            let _ = error_reply(&r, Rcode::ServFail);
        }
    }

    fn response_prefix(len: usize) -> Vec<u8> {
        let q = encode_query(9, "b.example", 1);
        let mut r = response(&q);
        r.truncate(len.min(r.len()));
        r
    }
}
