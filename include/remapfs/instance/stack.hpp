#pragma once
// The block stack an instance serves through, bottom up: the backing (and its spare), the fault
// injector (-o allow_inject only: otherwise it is not in the stack at all), the remap unit.

#include "remapfs/block/backing.hpp"
#include "remapfs/block/fault_injector.hpp"
#include "remapfs/remap/remap_layer.hpp"

#include <memory>
#include <vector>

namespace remapfs {

struct Stack {
    std::unique_ptr<block::BlockLayer> top;  // the remap layer, owning the layers below it
    block::Backing* backing = nullptr;
    block::FaultInjector* injector = nullptr;
    remap::RemapLayer* remap = nullptr;
};

struct StackRequest {
    int backing_fd = -1;
    int spare_fd = -1;        // -1: the spare is the backing's tail
    ByteOffset spare_offset;  // of the spare area in its file
    bool direct = true;
    bool allow_inject = false;
    std::vector<block::FaultRule> faults;
    std::uint32_t hdd_mb_s = 0;
    remap::RemapSetup remap;
};

Stack build_stack(StackRequest r);

}  // namespace remapfs
