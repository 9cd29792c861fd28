#pragma once
// Tests only: a file with the shape of `etcdctl snapshot save` output (base/etcd_backup.h): a bbolt
// meta page magic at byte 16, `pages` pages of `fill`, then the SHA-256 of everything before it.
#include <string>

#include "base/hash.h"

namespace kb {

inline std::string fake_etcd_snapshot(size_t pages = 8, char fill = '\x11') {
  std::string db(pages * 512, fill);
  const unsigned char magic[4] = {0xED, 0xDA, 0x0C, 0xED};
  for (int i = 0; i < 4; ++i) db[16 + i] = static_cast<char>(magic[i]);
  Sha256 h;
  h.update(db);
  auto d = h.digest();
  return db + std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

}  // namespace kb
