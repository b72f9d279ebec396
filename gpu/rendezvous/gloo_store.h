// A gloo::rendezvous::Store over gangway's rendezvous, so a C++ trainer
// builds its Gloo context the way PyTorch does over its TCPStore:
//
//   gangway::gpu::GlooStore store(*client);
//   auto context = std::make_shared<gloo::rendezvous::Context>(rank, size);
//   context->connectFullMesh(store, device);
//
// Gloo's Store interface has no error return: like Gloo's own stores, this
// one throws gloo::IoException (the status message inside) when a call fails
// or a wait runs out. It is the only place in gangway that throws, because
// the interface it implements demands it.
//
// Thread-safe as the client is; the client must outlive the store.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "gloo/rendezvous/store.h"
#include "gpu/rendezvous/rendezvous_client.h"

namespace gangway::gpu {

class GlooStore final : public gloo::rendezvous::Store {
 public:
  // Keys go under `prefix`, so several Gloo contexts (and NCCL's id) share
  // one job attempt's scope. `wait` bounds get() and wait() without a
  // timeout, and wait() with Gloo's kNoTimeout (zero).
  explicit GlooStore(const RendezvousClient& client, std::string prefix = "gloo/",
                     std::chrono::milliseconds wait = RendezvousClient::kDefaultWait);

  void set(const std::string& key, const std::vector<char>& data) override;
  // Waits for the key, as Gloo's file and hash stores do.
  std::vector<char> get(const std::string& key) override;
  void wait(const std::vector<std::string>& keys) override;
  void wait(const std::vector<std::string>& keys,
            const std::chrono::milliseconds& timeout) override;

 private:
  std::string Key(const std::string& key) const { return prefix_ + key; }

  const RendezvousClient& client_;
  const std::string prefix_;
  const std::chrono::milliseconds wait_;
};

}  // namespace gangway::gpu
