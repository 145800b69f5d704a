// The compact binary encoding of a Raft Message, used by every transport.
//
// Layout (integers are unsigned LEB128 varints unless marked u8; a string is
// a varint length followed by its bytes):
//
//   u8 version (= 1) | u8 type | u8 flags
//   from | to | term | index | log_term | commit | hint_index | hint_term
//   round | context
//   entry_count, then per entry: term | index | u8 type | data
//   if flags.has_snapshot:
//     meta.index | meta.term | conf_state | transfer_id | offset | data
//     conf_state = voters | learners | voters_outgoing | learners_next
//                  (each: count, then node ids) | u8 auto_leave
//
//   flags: bit 0 reject, bit 1 transfer, bit 2 snapshot.last,
//          bit 3 has_snapshot; other bits must be zero.
//
// decode_message() reads untrusted bytes (a peer, a fuzzer): every length and
// count is checked against the bytes that remain before anything is
// allocated, so hostile input answers kCorruption, never crashes, and never
// allocates more than a small multiple of the input's size. Nothing may
// follow the message.
//
// Thread safety: free functions over values; safe from any thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "nodenomad/raft/message.hpp"
#include "nodenomad/status.hpp"

namespace nodenomad {

inline constexpr std::uint8_t kMessageFormatVersion = 1;

std::string encode_message(const Message& message);
// Appends the encoding to `out` (for a transport that frames many messages).
void encode_message_to(const Message& message, std::string& out);
Result<Message> decode_message(std::string_view bytes);
// The same, but each entry's data is a slice of `owner` (which `bytes` must
// lie within: a received frame), not a copy: no allocation per entry, and
// the entries keep the owner alive.
Result<Message> decode_message(std::string_view bytes,
                               const std::shared_ptr<const std::string>& owner);

}  // namespace nodenomad
