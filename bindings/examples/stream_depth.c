/*
 * Streams synthetic depth frames into an edge4d action model from C and prints the
 * prediction per frame.
 *
 *   stream_depth CONFIG.toml WEIGHTS.safetensors [FRAMES]
 *
 * The frames show a box-shaped "subject" swaying in front of a 160x120 depth camera;
 * a real host would pass its depth camera's frames and intrinsics instead.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "edge4d.h"

#define W 160
#define H 120

static int check(Edge4dStatus status, const char *what) {
    if (status != EDGE4D_OK) {
        fprintf(stderr, "%s failed (%d): %s\n", what, (int)status, edge4d_last_error_message());
        return 0;
    }
    return 1;
}

/* A 0.5 m x 1.6 m slab 3 m away, swaying left and right (depth in millimetres). */
static void render(uint16_t *depth, int t) {
    const float f = 140.0f, sway = 0.3f * sinf(0.4f * (float)t);
    for (int v = 0; v < H; v++) {
        for (int u = 0; u < W; u++) {
            float z = 3.0f, x = (u - W / 2.0f) / f * z, y = (v - H / 2.0f) / f * z;
            int inside = fabsf(x - sway) < 0.25f && fabsf(y) < 0.8f;
            depth[v * W + u] = inside ? (uint16_t)(z * 1000.0f + 30.0f * y) : 0;
        }
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s CONFIG.toml WEIGHTS.safetensors [FRAMES]\n", argv[0]);
        return 2;
    }
    int frames = argc > 3 ? atoi(argv[3]) : 20;
    /* Before any thread starts: keeps Mesa quiet on a headless machine. */
    edge4d_prepare_headless_env();
    Edge4dRuntime *rt = NULL;
    Edge4dModel *model = NULL;
    Edge4dStream *stream = NULL;
    int ok = 0;
    if (!check(edge4d_runtime_create(EDGE4D_BACKEND_AUTO, &rt), "edge4d_runtime_create")) goto done;
    char adapter[256];
    if (!check(edge4d_runtime_adapter(rt, adapter, sizeof adapter), "edge4d_runtime_adapter")) goto done;
    printf("edge4d %s on %s\n", edge4d_version(), adapter);
    if (!check(edge4d_model_load(rt, argv[1], argv[2], &model), "edge4d_model_load")) goto done;
    uint32_t classes = 0;
    if (!check(edge4d_model_num_classes(model, &classes), "edge4d_model_num_classes")) goto done;
    if (!check(edge4d_stream_open(model, 16, 512, 1, &stream), "edge4d_stream_open")) goto done;

    Edge4dIntrinsics k = {W, H, 140.0f, 140.0f, W / 2.0f, H / 2.0f, 0.001f};
    uint16_t *depth = malloc(sizeof(uint16_t) * W * H);
    float *probs = malloc(sizeof(float) * classes);
    for (int t = 0; t < frames; t++) {
        render(depth, t);
        if (!check(edge4d_stream_push_depth(stream, depth, W, H, &k), "edge4d_stream_push_depth")) break;
        Edge4dPrediction p;
        Edge4dStatus s = edge4d_stream_latest(stream, &p, probs, classes);
        if (s == EDGE4D_NOT_READY) {
            printf("frame %d: filling the window\n", t);
        } else if (check(s, "edge4d_stream_latest")) {
            printf("frame %d: class %u (p=%.3f)\n", t, p.class_index, p.confidence);
        } else {
            break;
        }
        ok = t == frames - 1;
    }
    free(depth);
    free(probs);
done:
    edge4d_stream_destroy(stream);
    edge4d_model_destroy(model);
    edge4d_runtime_destroy(rt);
    return ok ? 0 : 1;
}
