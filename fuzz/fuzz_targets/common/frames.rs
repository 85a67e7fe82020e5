//! The input framing the capture-path targets (`frame`, `arp`) share: repeated
//! `[link: u8] [time step: u8] [length: u16 BE] [frame]`, the link taken modulo the five link
//! types; a tail too short for a header is one last Ethernet frame.

use netwarden_firmware::wire::LinkType;

pub const LINKS: [LinkType; 5] = [
    LinkType::Ethernet,
    LinkType::Raw,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Null,
];

/// Splits `data` into `(link, time step, frame)`.
pub fn frames(data: &[u8]) -> impl Iterator<Item = (LinkType, u8, &[u8])> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (link, step, frame, tail) = match rest {
            [link, step, hi, lo, tail @ ..] => {
                let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
                (
                    LINKS[usize::from(*link) % LINKS.len()],
                    *step,
                    &tail[..len],
                    &tail[len..],
                )
            }
            _ => (LinkType::Ethernet, 0, rest, &[][..]),
        };
        rest = tail;
        Some((link, step, frame))
    })
}
