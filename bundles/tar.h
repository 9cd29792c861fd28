#pragma once
// The tar layer of a bundle (bundles/FORMAT.md §3, §4), what the writer and the reader share:
// member names, the compression, the ustar header checksum and field decoding, and padding.
// Kept apart from both so that the reader, which the static installer links, needs nothing
// from the writer (the header encoder, ustar_header(), is the writer's alone).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "bundles/manifest.h"

namespace kb {

// How the tar stream is compressed (FORMAT.md §2).
enum class Compression { Zstd, Gzip };
const char* to_string(Compression c);  // "zstd", "gzip"

// Both sides move payload bytes in blocks of this size, so memory stays bounded.
inline constexpr size_t kStreamBlock = 256 * 1024;

inline constexpr size_t kTarBlock = 512;

// Member names inside the tar for the manifest, the signature and an entry.
inline constexpr const char* kManifestMember = "kbundle/manifest.json";
inline constexpr const char* kSignatureMember = "kbundle/manifest.sig";
std::string member_name(const ManifestEntry& e);  // "files" + path, plus "/" for a directory

// Zero bytes after `size` bytes of content up to the next 512-byte boundary.
inline size_t tar_padding(uint64_t size) { return static_cast<size_t>((kTarBlock - size % kTarBlock) % kTarBlock); }

// The header checksum of a 512-byte block: the sum of its bytes with the checksum field
// (bytes 148-155) counted as spaces.
unsigned ustar_checksum(const char* block);

// Decoding single header fields, strictly (false: the field is malformed).
// A string field: its bytes up to the first NUL; the rest must be NUL too.
bool ustar_string_field(const char* f, size_t len, std::string& out);
// A numeric field: octal digits, optionally space-led, ended by NUL or space. No base-256.
bool ustar_octal_field(const char* f, size_t len, uint64_t& out);

}  // namespace kb
