#ifndef PRESENCE_SERVER_PRESENCE_PRESENCE_RECORDS_H_
#define PRESENCE_SERVER_PRESENCE_PRESENCE_RECORDS_H_

// PresenceRecords: where a replica records, beside its local journal, every
// presence VS accepted until VS answered its leave, so that another replica
// can leave it if this one dies (the fleet's Redis). Both calls only queue
// work: they never wait, and may be made under a presence's lock.

#include <string>

#include "server/vs/vs_client.h"

namespace presence::presences {

class PresenceRecords {
 public:
  virtual ~PresenceRecords() = default;
  // VS accepted the presence `id` (or it was restored held).
  virtual void Joined(const std::string& id, const vs::RoomPresence& presence) = 0;
  // VS answered its leave: nobody owes it anything any more.
  virtual void Left(const std::string& id) = 0;
};

}  // namespace presence::presences

#endif  // PRESENCE_SERVER_PRESENCE_PRESENCE_RECORDS_H_
