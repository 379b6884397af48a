/*
 * Bad input through the C ABI: each case must return the right status code with a
 * message, never crash. Prints "ok <case>" per case; exits non-zero on the first miss.
 *
 *   bad_input CONFIG.toml WEIGHTS.safetensors
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge4d.h"

#define W 32
#define H 24

static int failures = 0;

static void expect(Edge4dStatus got, Edge4dStatus want, const char *needle, const char *name) {
    const char *msg = edge4d_last_error_message();
    if (got != want || (needle && !strstr(msg, needle))) {
        printf("FAIL %s: status %d (want %d), message \"%s\" (want \"%s\")\n", name, (int)got,
               (int)want, msg, needle ? needle : "");
        failures++;
    } else {
        printf("ok %s: %s\n", name, want == EDGE4D_OK ? "EDGE4D_OK" : msg);
    }
}

static void fill(uint16_t *depth, int t) {
    for (int i = 0; i < W * H; i++) depth[i] = (uint16_t)(2000 + 10 * ((i + t) % 37));
}

struct busy_args {
    Edge4dStream *stream;
    volatile int started, done;
};

static void *finetune_thread(void *p) {
    struct busy_args *a = p;
    a->started = 1;
    float loss;
    /* The main thread may hold the stream at first: retry until it is ours. */
    while (edge4d_stream_finetune(a->stream, 6, 2, &loss) == EDGE4D_BUSY) {
    }
    a->done = 1;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    if (edge4d_prepare_headless_env() != EDGE4D_OK) return 3;
    Edge4dRuntime *rt = NULL;
    Edge4dModel *model = NULL;
    Edge4dStream *stream = NULL;
    Edge4dPrediction pred;
    if (edge4d_runtime_create(EDGE4D_BACKEND_AUTO, &rt) != EDGE4D_OK) {
        printf("FAIL runtime: %s\n", edge4d_last_error_message());
        return 1;
    }
    expect(edge4d_runtime_create(EDGE4D_BACKEND_AUTO, NULL), EDGE4D_NULL_ARGUMENT, "out is null",
           "null out pointer");
    Edge4dRuntime *bad_rt = NULL;
    expect(edge4d_runtime_create(99, &bad_rt), EDGE4D_INVALID_ARGUMENT, "not an Edge4dBackend",
           "backend value outside the enum");
    expect(edge4d_model_load(rt, "/nonexistent/model.toml", argv[2], &model), EDGE4D_IO,
           "/nonexistent/model.toml", "missing config file");
    expect(edge4d_model_load(rt, argv[1], "/nonexistent/weights.safetensors", &model), EDGE4D_IO,
           "/nonexistent/weights.safetensors", "missing weights file");
    expect(edge4d_model_load(rt, argv[1], argv[1], &model), EDGE4D_IO, NULL, "weights not safetensors");
    if (edge4d_model_load(rt, argv[1], argv[2], &model) != EDGE4D_OK) {
        printf("FAIL model: %s\n", edge4d_last_error_message());
        return 1;
    }
    expect(edge4d_stream_open(model, 7, 512, 0, &stream), EDGE4D_INVALID_ARGUMENT, "7 frames",
           "window that does not fit the model");
    expect(edge4d_stream_open(model, 16, UINT32_MAX, 0, &stream), EDGE4D_INVALID_ARGUMENT,
           "binding limit", "points beyond what the device can hold");
    if (edge4d_stream_open(model, 16, 512, 0, &stream) != EDGE4D_OK) {
        printf("FAIL stream: %s\n", edge4d_last_error_message());
        return 1;
    }
    expect(edge4d_stream_finetune(stream, UINT32_MAX, 2, NULL), EDGE4D_INVALID_ARGUMENT,
           "1 to 1000000", "absurd fine-tuning step count");
    Edge4dIntrinsics k = {W, H, 30.0f, 30.0f, W / 2.0f, H / 2.0f, 0.001f};
    uint16_t depth[W * H];
    fill(depth, 0);
    expect(edge4d_stream_push_depth(stream, depth, W + 1, H, &k), EDGE4D_INVALID_ARGUMENT,
           "33x24", "frame of the wrong size");
    expect(edge4d_stream_push_depth(stream, NULL, W, H, &k), EDGE4D_NULL_ARGUMENT, "depth is null",
           "null depth");
    Edge4dIntrinsics bad = k;
    bad.fx = 0.0f;
    expect(edge4d_stream_push_depth(stream, depth, W, H, &bad), EDGE4D_INVALID_ARGUMENT, "fx",
           "zero focal length");
    bad.fx = 1e-30f;
    expect(edge4d_stream_push_depth(stream, depth, W, H, &bad), EDGE4D_INVALID_ARGUMENT, "fx",
           "vanishing focal length");
    bad = k;
    bad.depth_scale = 1e30f;
    expect(edge4d_stream_push_depth(stream, depth, W, H, &bad), EDGE4D_INVALID_ARGUMENT,
           "depth_scale", "absurd depth scale");
    memset(depth, 0, sizeof depth);
    expect(edge4d_stream_push_depth(stream, depth, W, H, &k), EDGE4D_INVALID_ARGUMENT, "all zero",
           "depth all zero");
    float nan_points[6] = {0.0f, 0.0f, 1.0f, 0.0f / 0.0f, 0.0f, 1.0f};
    expect(edge4d_stream_push_points(stream, nan_points, 2), EDGE4D_INVALID_ARGUMENT, "not finite",
           "NaN point");
    expect(edge4d_stream_latest(stream, &pred, NULL, 0), EDGE4D_NOT_READY, "0 of 16",
           "prediction before the window is full");
    expect(edge4d_stream_label(stream, 99), EDGE4D_INVALID_ARGUMENT, "out of range",
           "label out of range");
    for (int t = 0; t < 16; t++) {
        fill(depth, t);
        if (edge4d_stream_push_depth(stream, depth, W, H, &k) != EDGE4D_OK ||
            edge4d_stream_label(stream, 1) != EDGE4D_OK) {
            printf("FAIL push %d: %s\n", t, edge4d_last_error_message());
            return 1;
        }
    }
    float probs[2];
    expect(edge4d_stream_latest(stream, &pred, probs, 2), EDGE4D_INVALID_ARGUMENT, "2 floats",
           "probabilities buffer too small");
    expect(edge4d_stream_latest(stream, &pred, NULL, 0), EDGE4D_OK, NULL, "prediction once full");

    /* Two threads on one stream: the second is refused while the first fine-tunes. */
    struct busy_args a = {stream, 0, 0};
    pthread_t th;
    pthread_create(&th, NULL, finetune_thread, &a);
    while (!a.started) {
    }
    int busy = 0;
    while (!a.done && !busy) {
        fill(depth, 99);
        busy = edge4d_stream_push_depth(stream, depth, W, H, &k) == EDGE4D_BUSY;
    }
    pthread_join(th, NULL);
    if (busy) {
        expect(EDGE4D_BUSY, EDGE4D_BUSY, "another thread", "second thread on a busy stream");
    } else {
        printf("FAIL second thread on a busy stream: never refused\n");
        failures++;
    }

    expect(edge4d_stream_close(stream), EDGE4D_OK, NULL, "close");
    fill(depth, 1);
    expect(edge4d_stream_push_depth(stream, depth, W, H, &k), EDGE4D_CLOSED, "closed",
           "push to a closed stream");
    expect(edge4d_stream_save(stream, "/tmp/x.safetensors"), EDGE4D_CLOSED, "closed",
           "save a closed stream");
    edge4d_stream_destroy(stream);
    edge4d_model_destroy(model);
    edge4d_runtime_destroy(rt);
    printf("%d failures\n", failures);
    return failures ? 1 : 0;
}
