//! The `matrix` kind (contract section 13), in the making: what an event's content is made of.
//! `html.rs` renders Markdown as the HTML Matrix clients show; `content.rs` makes one post's
//! `m.room.message` content. Sending (rooms, identities, txnIds, answers) is not built yet, so
//! the kind is not registered in `KINDS`.

pub mod content;
pub mod html;
