// Streams point frames into an edge4d action model from C++, with RAII handles, and
// fine-tunes it on the device from labelled frames.
//
//   stream_points CONFIG.toml WEIGHTS.safetensors OUT.safetensors
#include <cmath>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "edge4d.h"

namespace edge4d {

// Throws on any status but EDGE4D_OK, with the library's message.
inline void check(Edge4dStatus status, const char *what) {
    if (status != EDGE4D_OK)
        throw std::runtime_error(std::string(what) + ": " + edge4d_last_error_message());
}

struct RuntimeDeleter { void operator()(Edge4dRuntime *p) const { edge4d_runtime_destroy(p); } };
struct ModelDeleter { void operator()(Edge4dModel *p) const { edge4d_model_destroy(p); } };
struct StreamDeleter { void operator()(Edge4dStream *p) const { edge4d_stream_destroy(p); } };
using Runtime = std::unique_ptr<Edge4dRuntime, RuntimeDeleter>;
using Model = std::unique_ptr<Edge4dModel, ModelDeleter>;
using Stream = std::unique_ptr<Edge4dStream, StreamDeleter>;

}  // namespace edge4d

// A ring of points 3 m ahead whose radius breathes with t (metres, camera frame).
static std::vector<float> frame(int t) {
    std::vector<float> xyz;
    for (int i = 0; i < 600; i++) {
        float a = 6.2831853f * i / 600.0f, r = 0.4f + 0.1f * std::sin(0.5f * t);
        xyz.insert(xyz.end(), {r * std::cos(a), 0.6f * std::sin(a), 3.0f + 0.05f * std::sin(a * 3)});
    }
    return xyz;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s CONFIG.toml WEIGHTS.safetensors OUT.safetensors\n", argv[0]);
        return 2;
    }
    // Before any thread starts: keeps Mesa quiet on a headless machine.
    edge4d_prepare_headless_env();
    try {
        Edge4dRuntime *rt_raw = nullptr;
        edge4d::check(edge4d_runtime_create(EDGE4D_BACKEND_AUTO, &rt_raw), "runtime");
        edge4d::Runtime rt(rt_raw);
        Edge4dModel *model_raw = nullptr;
        edge4d::check(edge4d_model_load(rt.get(), argv[1], argv[2], &model_raw), "model");
        edge4d::Model model(model_raw);
        Edge4dStream *stream_raw = nullptr;
        edge4d::check(edge4d_stream_open(model.get(), 16, 512, 3, &stream_raw), "stream");
        edge4d::Stream stream(stream_raw);

        const uint32_t label = 2;
        for (int t = 0; t < 20; t++) {
            std::vector<float> xyz = frame(t);
            edge4d::check(edge4d_stream_push_points(stream.get(), xyz.data(), xyz.size() / 3), "push");
            edge4d::check(edge4d_stream_label(stream.get(), label), "label");
        }
        std::vector<float> probs(64);
        Edge4dPrediction latest{};
        edge4d::check(edge4d_stream_latest(stream.get(), &latest, probs.data(), probs.size()), "latest");
        const float before = probs[label];
        float loss = 0.0f;
        edge4d::check(edge4d_stream_finetune(stream.get(), 3, 4, &loss), "finetune");
        std::printf("fine-tuned 3 steps, mean loss %.4f\n", loss);
        for (int t = 20; t < 36; t++) {
            std::vector<float> xyz = frame(t);
            edge4d::check(edge4d_stream_push_points(stream.get(), xyz.data(), xyz.size() / 3), "push");
        }
        edge4d::check(edge4d_stream_latest(stream.get(), &latest, probs.data(), probs.size()), "latest");
        std::printf("p(label %u) before %.4f after %.4f\n", label, before, probs[label]);
        edge4d::check(edge4d_stream_save(stream.get(), argv[3]), "save");
        std::printf("saved %s\n", argv[3]);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
