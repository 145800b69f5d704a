// The Boost.Serialization codec codec_bench measures against our own
// (encode_envelope / decode_envelope): non-intrusive serialize() for the
// wire structs in their smallest archive form, and encode/decode functions.
// Only the benchmark uses it (docs/transport.md, "Why not Boost.Serialization").
#pragma once

#include <stdexcept>
#include <streambuf>
#include <string>
#include <string_view>

#include <boost/archive/archive_exception.hpp>
#include <boost/archive/basic_archive.hpp>
#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/serialization/level.hpp>
#include <boost/serialization/split_free.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/tracking.hpp>
#include <boost/serialization/vector.hpp>
#include <boost/version.hpp>

#include "nodenomad/transport.hpp"

// --- Boost.Serialization: non-intrusive serialize() for the wire structs ----

namespace boost::serialization {

template <class Archive, class Tag>
void save(Archive& ar, const nodenomad::Counter<Tag>& c, unsigned /*version*/) {
  const std::uint64_t value = c.value();
  ar << value;
}
template <class Archive, class Tag>
void load(Archive& ar, nodenomad::Counter<Tag>& c, unsigned /*version*/) {
  std::uint64_t value = 0;
  ar >> value;
  c = nodenomad::Counter<Tag>(value);
}
template <class Archive, class Tag>
void serialize(Archive& ar, nodenomad::Counter<Tag>& c, unsigned version) {
  split_free(ar, c, version);
}

template <class Archive>
void save(Archive& ar, const nodenomad::NodeId& id, unsigned /*version*/) {
  ar << id.str();
}
template <class Archive>
void load(Archive& ar, nodenomad::NodeId& id, unsigned /*version*/) {
  std::string name;
  ar >> name;
  id = nodenomad::NodeId(std::move(name));
}
template <class Archive>
void serialize(Archive& ar, nodenomad::NodeId& id, unsigned version) {
  split_free(ar, id, version);
}

template <class Archive>
void save(Archive& ar, const nodenomad::SharedBytes& bytes, unsigned /*version*/) {
  ar << bytes.str();
}
template <class Archive>
void load(Archive& ar, nodenomad::SharedBytes& bytes, unsigned /*version*/) {
  std::string data;
  ar >> data;
  bytes = nodenomad::SharedBytes(std::move(data));
}
template <class Archive>
void serialize(Archive& ar, nodenomad::SharedBytes& bytes, unsigned version) {
  split_free(ar, bytes, version);
}

template <class Archive>
void serialize(Archive& ar, nodenomad::Entry& e, unsigned /*version*/) {
  ar & e.term & e.index & e.type & e.data;
}

template <class Archive>
void serialize(Archive& ar, nodenomad::ConfState& cs, unsigned /*version*/) {
  ar & cs.voters & cs.learners & cs.voters_outgoing & cs.learners_next & cs.auto_leave;
}

template <class Archive>
void serialize(Archive& ar, nodenomad::SnapshotChunk& chunk, unsigned /*version*/) {
  ar & chunk.meta.index & chunk.meta.term & chunk.meta.conf_state & chunk.transfer_id &
      chunk.offset & chunk.data & chunk.last;
}

// Like message_codec.cpp, the snapshot chunk is written only when it is not
// the default one, behind a flag.
template <class Archive>
void serialize(Archive& ar, nodenomad::Message& m, unsigned /*version*/) {
  ar & m.type & m.from & m.to & m.term & m.index & m.log_term & m.commit & m.hint_index &
      m.hint_term & m.reject & m.transfer & m.round & m.context & m.entries;
  bool has_snapshot = Archive::is_saving::value && m.snapshot != nodenomad::SnapshotChunk{};
  ar & has_snapshot;  // loading: overwritten by what was written
  if (has_snapshot) ar & m.snapshot;
}

template <class Archive>
void serialize(Archive& ar, nodenomad::Envelope& e, unsigned /*version*/) {
  ar & e.kind & e.from & e.to & e.group;
  if (e.kind == nodenomad::EnvelopeKind::kRaft) {
    ar & e.message;
  } else {
    ar & e.request_id & e.payload;
  }
}

}  // namespace boost::serialization

// No class id, version or object id in the archive, for the structs and the
// vectors of them: plain fields, counts and lengths only.
#define NN_BENCH_PLAIN_FIELDS(T)                                            \
  BOOST_CLASS_IMPLEMENTATION(T, boost::serialization::object_serializable) \
  BOOST_CLASS_TRACKING(T, boost::serialization::track_never)
NN_BENCH_PLAIN_FIELDS(nodenomad::Term)
NN_BENCH_PLAIN_FIELDS(nodenomad::LogIndex)
NN_BENCH_PLAIN_FIELDS(nodenomad::GroupId)
NN_BENCH_PLAIN_FIELDS(nodenomad::NodeId)
NN_BENCH_PLAIN_FIELDS(nodenomad::SharedBytes)
NN_BENCH_PLAIN_FIELDS(nodenomad::Entry)
NN_BENCH_PLAIN_FIELDS(nodenomad::ConfState)
NN_BENCH_PLAIN_FIELDS(nodenomad::SnapshotChunk)
NN_BENCH_PLAIN_FIELDS(nodenomad::Message)
NN_BENCH_PLAIN_FIELDS(nodenomad::Envelope)
NN_BENCH_PLAIN_FIELDS(std::vector<nodenomad::Entry>)
NN_BENCH_PLAIN_FIELDS(std::vector<nodenomad::NodeId>)
#undef NN_BENCH_PLAIN_FIELDS

namespace nodenomad::codec_bench {

// --- the Boost codec, behind encode/decode functions --------------------------

inline constexpr unsigned kArchiveFlags =
    boost::archive::no_header | boost::archive::no_codecvt | boost::archive::no_tracking;

// Appends what the archive writes to a string the caller reuses, as a
// transport's send buffer would be.
class StringSink : public std::streambuf {
 public:
  explicit StringSink(std::string& out) : out_(out) {}

 protected:
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    out_.append(s, static_cast<std::size_t>(n));
    return n;
  }
  int_type overflow(int_type c) override {
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
      out_.push_back(traits_type::to_char_type(c));
    }
    return traits_type::not_eof(c);
  }

 private:
  std::string& out_;
};

// Reads from bytes the caller owns, without copying them.
class ViewSource : public std::streambuf {
 public:
  explicit ViewSource(std::string_view in) {
    // The get area is only read: nothing here writes through these pointers.
    char* begin = const_cast<char*>(in.data());
    setg(begin, begin, begin + in.size());
  }
};

inline void boost_encode_to(const Envelope& envelope, std::string& out) {
  StringSink sink(out);
  boost::archive::binary_oarchive archive(sink, kArchiveFlags);
  archive << envelope;
}

// Throws what the archive throws (archive_exception, std::bad_alloc, ...);
// bytes left over are refused, as decode_envelope() refuses them.
inline Envelope boost_decode(std::string_view bytes) {
  ViewSource source(bytes);
  boost::archive::binary_iarchive archive(source, kArchiveFlags);
  Envelope envelope;
  archive >> envelope;
  if (source.in_avail() != 0) throw std::runtime_error("bytes follow the envelope");
  return envelope;
}

}  // namespace nodenomad::codec_bench
