# The data pipeline (datasets/). Included from tests/CMakeLists.txt.

# Readers: every format, every bad-input message, gzip, and the real sample
# sets of shared/data (skipped when that folder is absent).
st_add_test(readers_test unit SOURCES datasets/readers_test.cpp LIBS st_data_readers
  ENV ST_SHARED_DATA=${ST_SHARED_DATA})

# Chat-template interpreter: unit tests, and parity with transformers + jinja2.
st_add_test(jinja_test unit SOURCES datasets/jinja_test.cpp LIBS st_jinja)
add_executable(jinja_render_main datasets/jinja_render_main.cpp)
target_link_libraries(jinja_render_main PRIVATE st_jinja)
add_test(NAME parity.jinja
         COMMAND ${ST_PYTHON} ${CMAKE_SOURCE_DIR}/tests/parity/jinja_parity.py $<TARGET_FILE:jinja_render_main>)
set_tests_properties(parity.jinja PROPERTIES LABELS parity ENVIRONMENT ST_SHARED_DATA=${ST_SHARED_DATA})

# Masks, batching, the token cache and prepare; packed rows through the model.
st_add_test(sample_encoder_test unit SOURCES datasets/sample_encoder_test.cpp LIBS st_datasets st_test_tokenizer)
st_add_test(batching_test unit SOURCES datasets/batching_test.cpp LIBS st_datasets)
st_add_test(prepare_test unit SOURCES datasets/prepare_test.cpp LIBS st_datasets st_test_tokenizer)
st_add_test(packed_forward_test unit SOURCES datasets/packed_forward_test.cpp LIBS st_datasets st_model)
# The same on CUDA with the fused kernels (scripts/gpu_check.sh builds and runs it).
st_add_test(packed_forward_gpu_test gpu SOURCES datasets/packed_forward_gpu_test.cpp LIBS st_datasets st_model)

# Rendering, ids and masks against transformers/TRL on every real data set.
add_test(NAME parity.data
         COMMAND ${ST_PYTHON} ${CMAKE_SOURCE_DIR}/tests/parity/data_parity.py $<TARGET_FILE:salamandra-tune>
                 ${CMAKE_BINARY_DIR}/test-work/data_parity)
set_tests_properties(parity.data PROPERTIES LABELS parity SKIP_RETURN_CODE 77
                     ENVIRONMENT ST_SHARED_DATA=${ST_SHARED_DATA})

# Synthetic multilingual tasks: determinism, coverage, answers recomputed,
# train/test disjoint, readable by the readers.
st_add_test(synthetic_tasks_test unit SOURCES datasets/synthetic_tasks_test.cpp LIBS st_datasets)
