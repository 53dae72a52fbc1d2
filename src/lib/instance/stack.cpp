#include "remapfs/instance/stack.hpp"

namespace remapfs {

Stack build_stack(StackRequest r) {
    Stack s;
    const Geometry& g = r.remap.geometry;
    auto bottom = std::make_unique<block::Backing>(g, r.backing_fd, r.spare_fd, r.spare_offset, r.direct);
    s.backing = bottom.get();
    std::unique_ptr<block::BlockLayer> below = std::move(bottom);
    if (r.allow_inject) {
        auto inj = std::make_unique<block::FaultInjector>(std::move(below), g, r.remap.clock);
        for (const auto& rule : r.faults) inj->add(rule);
        if (r.hdd_mb_s) inj->set_hdd_model(block::HddModel{static_cast<double>(r.hdd_mb_s)});
        s.injector = inj.get();
        below = std::move(inj);
    }
    auto layer = std::make_unique<remap::RemapLayer>(std::move(below), std::move(r.remap));
    s.remap = layer.get();
    s.top = std::move(layer);
    return s;
}

}  // namespace remapfs
