//! The JSON bodies of control frames. See `docs/WIRE.md` §3.

use msg_header::{ActorId, MsgId};
use protocol::ProtocolId;
use serde::{Deserialize, Serialize};

/// One actor in a DIRECTORY frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirEntry {
    /// Its instance id.
    pub id: ActorId,
    /// Its name, unique on its node.
    pub name: String,
    /// The protocols it speaks.
    #[serde(default)]
    pub protocols: Vec<ProtocolId>,
    /// Every message id it accepts.
    #[serde(default)]
    pub msgs: Vec<MsgId>,
}

/// The body of a DIRECTORY frame: the sender's actors, in full or as changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryUpdate {
    /// The sender's node name (in a full directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Whether this replaces everything known of the sender's actors.
    #[serde(default)]
    pub full: bool,
    /// Actors added.
    #[serde(default)]
    pub add: Vec<DirEntry>,
    /// Actors gone.
    #[serde(default)]
    pub remove: Vec<ActorId>,
}

/// The body of a CLOSE frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseBody {
    /// Why the link is closed: `shutdown`, `duplicate`, ...
    pub reason: String,
}
