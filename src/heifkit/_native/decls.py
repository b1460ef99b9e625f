"""C declarations of the libheif subset heifkit uses, kept as data in one place.

``TYPES`` is cffi ``cdef`` text for the types; struct layouts and enum values are left open (``...``)
so that cffi takes them from the real headers at build time. ``FUNCTIONS`` lists the libheif functions
we call: ``_native/build.py`` turns each into a function pointer resolved with ``dlsym`` from the libheif that
``_native/libheif.py`` loads by absolute path, so the extension never links against whatever ``libheif.so.1`` the
loader would find first. ``HELPER_FUNCTIONS`` are libheif functions only our C code calls (bound the
same way, not exposed to Python). ``HELPERS`` declares our own C helpers (defined in ``_native/helpers.c``)
and the Python functions C calls back (``extern "Python"``, defined in ``_read/stream.py``).
``HEADERS`` are the libheif headers the extension is compiled against.
"""

HEADERS = [
    "heif.h",
    "heif_tiling.h",
    "heif_properties.h",
    "heif_security.h",
    "heif_aux_images.h",
    "heif_entity_groups.h",
    "heif_items.h",
    "heif_plugin.h",
    "heif_sequences.h",
]

HELPER_FUNCTIONS = [
    "heif_error heif_register_decoder_plugin(const heif_decoder_plugin*);",
    "heif_error heif_image_add_plane_safe(heif_image* image, heif_channel channel, int width, int height,"
    " int bit_depth, const heif_security_limits* limits);",
    "heif_context* heif_context_alloc(void);",
    "void heif_context_free(heif_context*);",
    "heif_error heif_context_write(heif_context*, heif_writer* writer, void* userdata);",
]

TYPES = """
typedef uint32_t heif_item_id;

typedef enum heif_error_code { heif_error_Ok, heif_error_Invalid_input, heif_error_Unsupported_filetype,
    heif_error_Unsupported_feature, heif_error_Usage_error, heif_error_Memory_allocation_error,
    heif_error_Decoder_plugin_error, heif_error_Encoder_plugin_error, heif_error_Encoding_error,
    heif_error_Color_profile_does_not_exist, heif_error_Plugin_loading_error, heif_error_Canceled,
    heif_error_End_of_sequence, ... } heif_error_code;
typedef enum heif_suberror_code { heif_suberror_Unspecified, heif_suberror_End_of_data,
    heif_suberror_Security_limit_exceeded, heif_suberror_Unsupported_codec, heif_suberror_Invalid_image_size,
    heif_suberror_Unsupported_parameter, heif_suberror_Invalid_parameter_value, ... } heif_suberror_code;

typedef struct heif_error { heif_error_code code; heif_suberror_code subcode; const char* message; ...; }
    heif_error;

typedef enum heif_compression_format { heif_compression_undefined, heif_compression_HEVC,
    heif_compression_AVC, heif_compression_JPEG, heif_compression_AV1, heif_compression_VVC,
    heif_compression_EVC, heif_compression_JPEG2000, heif_compression_uncompressed,
    heif_compression_mask, ... } heif_compression_format;
typedef enum heif_chroma { heif_chroma_undefined, heif_chroma_monochrome, heif_chroma_420, heif_chroma_422,
    heif_chroma_444, heif_chroma_interleaved_RGB, heif_chroma_interleaved_RGBA,
    heif_chroma_interleaved_RRGGBB_BE, heif_chroma_interleaved_RRGGBBAA_BE,
    heif_chroma_interleaved_RRGGBB_LE, heif_chroma_interleaved_RRGGBBAA_LE, ... } heif_chroma;
typedef enum heif_colorspace { heif_colorspace_undefined, heif_colorspace_YCbCr, heif_colorspace_RGB,
    heif_colorspace_monochrome, ... } heif_colorspace;
typedef enum heif_channel { heif_channel_Y, heif_channel_Cb, heif_channel_Cr, heif_channel_R,
    heif_channel_G, heif_channel_B, heif_channel_Alpha, heif_channel_interleaved, ... } heif_channel;
typedef enum heif_color_profile_type { heif_color_profile_type_not_present, heif_color_profile_type_nclx,
    heif_color_profile_type_rICC, heif_color_profile_type_prof, ... } heif_color_profile_type;
typedef enum heif_orientation { heif_orientation_normal, ... } heif_orientation;
typedef enum heif_depth_representation_type { heif_depth_representation_type_uniform_inverse_Z, ... }
    heif_depth_representation_type;

typedef struct heif_context heif_context;
typedef uint32_t heif_property_id;
typedef enum heif_item_property_type { heif_item_property_type_invalid, heif_item_property_type_transform_mirror,
    heif_item_property_type_transform_rotation, heif_item_property_type_transform_crop, ... }
    heif_item_property_type;
typedef enum heif_transform_mirror_direction { heif_transform_mirror_direction_invalid, ... }
    heif_transform_mirror_direction;
typedef enum heif_filetype_result { heif_filetype_no, heif_filetype_yes_supported,
    heif_filetype_yes_unsupported, heif_filetype_maybe, ... } heif_filetype_result;
typedef struct heif_image_handle heif_image_handle;
typedef struct heif_image heif_image;
typedef struct heif_encoder heif_encoder;
typedef struct heif_encoder_descriptor heif_encoder_descriptor;
typedef struct heif_decoder_descriptor heif_decoder_descriptor;
typedef struct heif_reading_options heif_reading_options;
typedef enum heif_reader_grow_status { heif_reader_grow_status_size_reached, heif_reader_grow_status_timeout,
    heif_reader_grow_status_size_beyond_eof, heif_reader_grow_status_error, ... } heif_reader_grow_status;
typedef struct heif_reader { int reader_api_version; int64_t (*get_position)(void* userdata);
    int (*read)(void* data, size_t size, void* userdata); int (*seek)(int64_t position, void* userdata);
    heif_reader_grow_status (*wait_for_file_size)(int64_t target_size, void* userdata); ...; } heif_reader;
typedef struct heif_init_params heif_init_params;
typedef struct heif_plugin_info heif_plugin_info;
typedef struct heif_camera_extrinsic_matrix heif_camera_extrinsic_matrix;

typedef struct heif_security_limits { uint8_t version; uint64_t max_image_size_pixels;
    uint64_t max_number_of_tiles; uint32_t max_items; uint32_t max_color_profile_size;
    uint64_t max_memory_block_size; uint32_t max_children_per_box; uint64_t max_total_memory;
    uint32_t max_sequence_frames; ...; }
    heif_security_limits;

typedef enum heif_chroma_upsampling_algorithm { heif_chroma_upsampling_nearest_neighbor,
    heif_chroma_upsampling_bilinear, ... } heif_chroma_upsampling_algorithm;
typedef struct heif_color_conversion_options { uint8_t version;
    heif_chroma_upsampling_algorithm preferred_chroma_upsampling_algorithm;
    uint8_t only_use_preferred_chroma_algorithm; ...; } heif_color_conversion_options;
typedef struct heif_color_profile_nclx { uint8_t version; int color_primaries;
    int transfer_characteristics; int matrix_coefficients; uint8_t full_range_flag;
    float color_primary_red_x; float color_primary_red_y; float color_primary_green_x;
    float color_primary_green_y; float color_primary_blue_x; float color_primary_blue_y;
    float color_primary_white_x; float color_primary_white_y; ...; } heif_color_profile_nclx;

typedef struct heif_decoding_options { uint8_t version; uint8_t ignore_transformations;
    uint8_t convert_hdr_to_8bit; uint8_t strict_decoding; const char* decoder_id;
    heif_color_conversion_options color_conversion_options;
    int num_codec_threads; int ignore_sequence_editlist; heif_color_profile_nclx* output_image_nclx_profile;
    uint8_t output_image_nclx_profile_passthrough; ...; } heif_decoding_options;


typedef struct heif_encoding_options { uint8_t version; uint8_t save_alpha_channel;
    heif_color_profile_nclx* output_nclx_profile; uint8_t macOS_compatibility_workaround_no_nclx_profile;
    heif_orientation image_orientation; ...; } heif_encoding_options;

typedef struct heif_image_tiling { int version; uint32_t num_columns; uint32_t num_rows;
    uint32_t tile_width; uint32_t tile_height; uint32_t image_width; uint32_t image_height;
    uint32_t top_offset; uint32_t left_offset; ...; } heif_image_tiling;

typedef struct heif_depth_representation_info { uint8_t version; uint8_t has_z_near; uint8_t has_z_far;
    uint8_t has_d_min; uint8_t has_d_max; double z_near; double z_far; double d_min; double d_max;
    heif_depth_representation_type depth_representation_type; uint32_t disparity_reference_view;
    uint32_t depth_nonlinear_representation_model_size; ...; } heif_depth_representation_info;

typedef struct heif_content_light_level { uint16_t max_content_light_level;
    uint16_t max_pic_average_light_level; ...; } heif_content_light_level;
typedef struct heif_mastering_display_colour_volume { uint16_t display_primaries_x[3];
    uint16_t display_primaries_y[3]; uint16_t white_point_x; uint16_t white_point_y;
    uint32_t max_display_mastering_luminance; uint32_t min_display_mastering_luminance; ...; }
    heif_mastering_display_colour_volume;
typedef struct heif_ambient_viewing_environment { uint32_t ambient_illumination; uint16_t ambient_light_x;
    uint16_t ambient_light_y; ...; } heif_ambient_viewing_environment;
typedef struct heif_camera_intrinsic_matrix { double focal_length_x; double focal_length_y;
    double principal_point_x; double principal_point_y; double skew; ...; } heif_camera_intrinsic_matrix;

typedef enum heif_metadata_compression { heif_metadata_compression_off, ... } heif_metadata_compression;
typedef uint32_t heif_brand2;

typedef uint32_t heif_entity_group_id;
typedef struct heif_entity_group { heif_entity_group_id entity_group_id; uint32_t entity_group_type;
    heif_item_id* entities; uint32_t num_entities; ...; } heif_entity_group;

typedef struct heif_track heif_track;
typedef uint32_t heif_track_type;
typedef struct heif_track_options heif_track_options;
typedef enum heif_auxiliary_track_info_type { heif_auxiliary_track_info_type_unknown,
    heif_auxiliary_track_info_type_alpha, ... } heif_auxiliary_track_info_type;
typedef enum heif_sequence_gop_structure { heif_sequence_gop_structure_intra_only,
    heif_sequence_gop_structure_lowdelay, heif_sequence_gop_structure_unrestricted, ... }
    heif_sequence_gop_structure;
typedef struct heif_sequence_encoding_options { uint8_t version;
    const heif_color_profile_nclx* output_nclx_profile; heif_sequence_gop_structure gop_structure;
    int keyframe_distance_min; int keyframe_distance_max; int save_alpha_channel; ...; }
    heif_sequence_encoding_options;
#define heif_sequence_track_number_of_repetitions_infinite ...
#define heif_sequence_maximum_number_of_repetitions ...

#define LIBHEIF_NUMERIC_VERSION ...
#define LIBHEIF_AUX_IMAGE_FILTER_OMIT_ALPHA ...
#define LIBHEIF_AUX_IMAGE_FILTER_OMIT_DEPTH ...
"""

FUNCTIONS = [
    # library
    "heif_error heif_init(heif_init_params*);",
    "const char* heif_get_version(void);",
    "uint32_t heif_get_version_number(void);",
    "heif_error heif_load_plugin(const char* filename, heif_plugin_info const** out_plugin);",
    "int heif_get_encoder_descriptors(heif_compression_format format_filter, const char* name_filter,"
    " const heif_encoder_descriptor** out_encoders, int count);",
    "const char* heif_encoder_descriptor_get_name(const heif_encoder_descriptor*);",
    "const char* heif_encoder_descriptor_get_id_name(const heif_encoder_descriptor*);",
    "int heif_get_decoder_descriptors(heif_compression_format format_filter,"
    " const heif_decoder_descriptor** out_decoders, int count);",
    "const char* heif_decoder_descriptor_get_name(const heif_decoder_descriptor*);",
    "const char* heif_decoder_descriptor_get_id_name(const heif_decoder_descriptor*);",
    "const heif_security_limits* heif_get_global_security_limits(void);",
    "const heif_security_limits* heif_get_disabled_security_limits(void);",
    # context (read)
    "heif_filetype_result heif_check_filetype(const uint8_t* data, int len);",
    "const char* heif_get_file_mime_type(const uint8_t* data, int len);",
    "heif_error heif_has_compatible_filetype(const uint8_t* data, int len);",
    "heif_error heif_context_set_security_limits(heif_context*, const heif_security_limits*);",
    "heif_error heif_context_read_from_file(heif_context*, const char* filename, const heif_reading_options*);",
    "heif_error heif_context_read_from_reader(heif_context*, const heif_reader* reader, void* userdata,"
    " const heif_reading_options*);",
    "heif_error heif_context_read_from_memory_without_copy(heif_context*, const void* mem, size_t size,"
    " const heif_reading_options*);",
    "void heif_context_set_max_decoding_threads(heif_context* ctx, int max_threads);",
    "int heif_context_get_number_of_top_level_images(heif_context* ctx);",
    "int heif_context_get_list_of_top_level_image_IDs(heif_context* ctx, heif_item_id* ID_array, int count);",
    "heif_error heif_context_get_primary_image_ID(heif_context* ctx, heif_item_id* id);",
    "heif_error heif_context_get_image_handle(heif_context* ctx, heif_item_id id, heif_image_handle**);",
    "heif_entity_group* heif_context_get_entity_groups(const heif_context*, uint32_t type_filter,"
    " heif_item_id item_filter, int* out_num_groups);",
    "void heif_entity_groups_release(heif_entity_group*, int num_groups);",
    # handle (read)
    "void heif_image_handle_release(const heif_image_handle*);",
    "int heif_image_handle_get_width(const heif_image_handle* handle);",
    "int heif_image_handle_get_height(const heif_image_handle* handle);",
    "heif_item_id heif_image_handle_get_item_id(const heif_image_handle* handle);",
    "int heif_image_handle_get_ispe_width(const heif_image_handle* handle);",
    "int heif_image_handle_get_ispe_height(const heif_image_handle* handle);",
    "int heif_item_get_transformation_properties(const heif_context* context, heif_item_id id,"
    " heif_property_id* out_list, int count);",
    "heif_item_property_type heif_item_get_property_type(const heif_context* context, heif_item_id id,"
    " heif_property_id property_id);",
    "heif_transform_mirror_direction heif_item_get_property_transform_mirror(const heif_context* context,"
    " heif_item_id itemId, heif_property_id propertyId);",
    "int heif_item_get_property_transform_rotation_ccw(const heif_context* context, heif_item_id itemId,"
    " heif_property_id propertyId);",
    "void heif_item_get_property_transform_crop_borders(const heif_context* context, heif_item_id itemId,"
    " heif_property_id propertyId, int image_width, int image_height, int* left, int* top, int* right,"
    " int* bottom);",
    "int heif_image_handle_has_nominal_diffuse_white_luminance(const heif_image_handle*);",
    "uint32_t heif_image_handle_get_nominal_diffuse_white_luminance(const heif_image_handle*);",
    "void heif_image_handle_set_nominal_diffuse_white_luminance(const heif_image_handle*, uint32_t luminance);",
    "int heif_image_handle_has_alpha_channel(const heif_image_handle*);",
    "int heif_image_handle_is_premultiplied_alpha(const heif_image_handle*);",
    "int heif_image_handle_get_luma_bits_per_pixel(const heif_image_handle*);",
    "int heif_image_handle_get_chroma_bits_per_pixel(const heif_image_handle*);",
    "heif_error heif_image_handle_get_grid_image_tile_id(const heif_image_handle* handle,"
    " int process_image_transformations, uint32_t tile_x, uint32_t tile_y, heif_item_id* out_tile_item_id);",
    "heif_error heif_image_handle_get_preferred_decoding_colorspace(const heif_image_handle* image_handle,"
    " heif_colorspace* out_colorspace, heif_chroma* out_chroma);",
    "heif_color_profile_type heif_image_handle_get_color_profile_type(const heif_image_handle* handle);",
    "heif_error heif_image_handle_get_nclx_color_profile(const heif_image_handle* handle,"
    " heif_color_profile_nclx** out_data);",
    "size_t heif_image_handle_get_raw_color_profile_size(const heif_image_handle* handle);",
    "heif_error heif_image_handle_get_raw_color_profile(const heif_image_handle* handle, void* out_data);",
    "int heif_image_handle_get_number_of_metadata_blocks(const heif_image_handle* handle, const char* type_filter);",
    "int heif_image_handle_get_list_of_metadata_block_IDs(const heif_image_handle* handle,"
    " const char* type_filter, heif_item_id* ids, int count);",
    "const char* heif_image_handle_get_metadata_type(const heif_image_handle* handle, heif_item_id metadata_id);",
    "const char* heif_image_handle_get_metadata_content_type(const heif_image_handle* handle,"
    " heif_item_id metadata_id);",
    "size_t heif_image_handle_get_metadata_size(const heif_image_handle* handle, heif_item_id metadata_id);",
    "heif_error heif_image_handle_get_metadata(const heif_image_handle* handle, heif_item_id metadata_id,"
    " void* out_data);",
    "int heif_image_handle_get_number_of_thumbnails(const heif_image_handle* handle);",
    "int heif_image_handle_get_list_of_thumbnail_IDs(const heif_image_handle* handle, heif_item_id* ids, int count);",
    "heif_error heif_image_handle_get_thumbnail(const heif_image_handle* main_image_handle,"
    " heif_item_id thumbnail_id, heif_image_handle** out_thumbnail_handle);",
    "int heif_image_handle_get_number_of_depth_images(const heif_image_handle* handle);",
    "int heif_image_handle_get_list_of_depth_image_IDs(const heif_image_handle* handle, heif_item_id* ids, int count);",
    "heif_error heif_image_handle_get_depth_image_handle(const heif_image_handle* handle,"
    " heif_item_id depth_image_id, heif_image_handle** out_depth_handle);",
    "int heif_image_handle_get_depth_image_representation_info(const heif_image_handle* handle,"
    " heif_item_id depth_image_id, const heif_depth_representation_info** out);",
    "void heif_depth_representation_info_free(const heif_depth_representation_info* info);",
    "int heif_image_handle_get_number_of_auxiliary_images(const heif_image_handle* handle, int aux_filter);",
    "int heif_image_handle_get_list_of_auxiliary_image_IDs(const heif_image_handle* handle, int aux_filter,"
    " heif_item_id* ids, int count);",
    "heif_error heif_image_handle_get_auxiliary_image_handle(const heif_image_handle* main_image_handle,"
    " heif_item_id auxiliary_id, heif_image_handle** out_auxiliary_handle);",
    "heif_error heif_image_handle_get_auxiliary_type(const heif_image_handle* handle, const char** out_type);",
    "void heif_image_handle_release_auxiliary_type(const heif_image_handle* handle, const char** out_type);",
    "int heif_image_handle_get_pixel_aspect_ratio(const heif_image_handle*, uint32_t* aspect_h, uint32_t* aspect_v);",
    "int heif_image_handle_get_content_light_level(const heif_image_handle*, heif_content_light_level* out);",
    "int heif_image_handle_get_mastering_display_colour_volume(const heif_image_handle*,"
    " heif_mastering_display_colour_volume* out);",
    "int heif_image_handle_get_ambient_viewing_environment(const heif_image_handle*,"
    " heif_ambient_viewing_environment* out);",
    "heif_error heif_image_handle_get_image_tiling(const heif_image_handle* handle,"
    " int process_image_transformations, heif_image_tiling* out_tiling);",
    "int heif_image_handle_has_camera_intrinsic_matrix(const heif_image_handle* handle);",
    "heif_error heif_image_handle_get_camera_intrinsic_matrix(const heif_image_handle* handle,"
    " heif_camera_intrinsic_matrix* out_matrix);",
    "int heif_image_handle_has_camera_extrinsic_matrix(const heif_image_handle* handle);",
    "heif_error heif_image_handle_get_camera_extrinsic_matrix(const heif_image_handle* handle,"
    " heif_camera_extrinsic_matrix** out_matrix);",
    "void heif_camera_extrinsic_matrix_release(heif_camera_extrinsic_matrix*);",
    "heif_error heif_camera_extrinsic_matrix_get_rotation_matrix(const heif_camera_extrinsic_matrix*,"
    " double* out_matrix_row_major);",
    # decode
    "heif_decoding_options* heif_decoding_options_alloc(void);",
    "void heif_decoding_options_free(heif_decoding_options*);",
    "heif_error heif_decode_image(const heif_image_handle* in_handle, heif_image** out_img,"
    " heif_colorspace colorspace, heif_chroma chroma, const heif_decoding_options* options);",
    "heif_error heif_image_handle_decode_image_tile(const heif_image_handle* in_handle, heif_image** out_img,"
    " heif_colorspace colorspace, heif_chroma chroma, const heif_decoding_options* options,"
    " uint32_t tile_x, uint32_t tile_y);",
    # image
    "void heif_image_release(const heif_image*);",
    "int heif_image_get_primary_width(const heif_image* img);",
    "int heif_image_get_primary_height(const heif_image* img);",
    "int heif_image_get_width(const heif_image* img, heif_channel channel);",
    "int heif_image_get_height(const heif_image* img, heif_channel channel);",
    "int heif_image_get_bits_per_pixel_range(const heif_image*, heif_channel channel);",
    "uint8_t* heif_image_get_plane2(heif_image*, heif_channel channel, size_t* out_stride);",
    "heif_colorspace heif_image_get_colorspace(const heif_image*);",
    "heif_chroma heif_image_get_chroma_format(const heif_image*);",
    "heif_error heif_image_get_nclx_color_profile(const heif_image* image, heif_color_profile_nclx** out_data);",
    "heif_error heif_image_create(int width, int height, heif_colorspace colorspace, heif_chroma chroma,"
    " heif_image** out_image);",
    "heif_error heif_image_add_plane(heif_image* image, heif_channel channel, int width, int height, int bit_depth);",
    "void heif_image_set_premultiplied_alpha(heif_image* image, int is_premultiplied_alpha);",
    "heif_error heif_image_set_raw_color_profile(heif_image* image, const char* profile_type_fourcc_string,"
    " const void* profile_data, const size_t profile_size);",
    "heif_error heif_image_set_nclx_color_profile(heif_image* image, const heif_color_profile_nclx* color_profile);",
    "void heif_image_set_pixel_aspect_ratio(heif_image*, uint32_t aspect_h, uint32_t aspect_v);",
    "heif_color_profile_nclx* heif_nclx_color_profile_alloc(void);",
    "void heif_nclx_color_profile_free(heif_color_profile_nclx* nclx_profile);",
    # sequences (read)
    "int heif_context_has_sequence(const heif_context*);",
    "int heif_context_number_of_sequence_tracks(const heif_context*);",
    "void heif_context_get_track_ids(const heif_context* ctx, uint32_t out_track_id_array[]);",
    "heif_track* heif_context_get_track(const heif_context*, uint32_t id);",
    "void heif_track_release(heif_track*);",
    "uint32_t heif_track_get_id(const heif_track* track);",
    "heif_track_type heif_track_get_track_handler_type(const heif_track*);",
    "heif_auxiliary_track_info_type heif_track_get_auxiliary_info_type(const heif_track*);",
    "const char* heif_track_get_auxiliary_info_type_urn(const heif_track*);",
    "int heif_track_has_alpha_channel(const heif_track*);",
    "uint32_t heif_track_get_timescale(const heif_track*);",
    "uint32_t heif_track_get_number_of_repetitions(const heif_track*);",
    "heif_error heif_track_get_image_resolution(const heif_track*, uint16_t* out_width, uint16_t* out_height);",
    "heif_error heif_track_decode_next_image(heif_track* track, heif_image** out_img, heif_colorspace colorspace,"
    " heif_chroma chroma, const heif_decoding_options* options);",
    "size_t heif_track_get_number_of_track_reference_of_type(const heif_track*, uint32_t reference_type);",
    "size_t heif_track_get_references_from_track(const heif_track*, uint32_t reference_type,"
    " uint32_t out_to_track_id[]);",
    # sequences (write)
    "void heif_context_set_sequence_timescale(heif_context*, uint32_t timescale);",
    "void heif_context_set_number_of_sequence_repetitions(heif_context*, uint32_t number_of_repetitions);",
    "heif_track_options* heif_track_options_alloc(void);",
    "void heif_track_options_release(heif_track_options*);",
    "void heif_track_options_set_timescale(heif_track_options*, uint32_t timescale);",
    "heif_sequence_encoding_options* heif_sequence_encoding_options_alloc(void);",
    "void heif_sequence_encoding_options_release(heif_sequence_encoding_options*);",
    "heif_error heif_context_add_visual_sequence_track(heif_context*, uint16_t width, uint16_t height,"
    " heif_track_type track_type, const heif_track_options* track_options,"
    " const heif_sequence_encoding_options* encoding_options, heif_track** out_track);",
    "void heif_image_set_duration(heif_image*, uint32_t duration);",
    "heif_error heif_track_encode_sequence_image(heif_track*, const heif_image* image, heif_encoder* encoder,"
    " const heif_sequence_encoding_options* sequence_encoding_options);",
    "heif_error heif_track_encode_end_of_sequence(heif_track*, heif_encoder* encoder);",
    # encode
    "heif_error heif_context_get_encoder(heif_context* context, const heif_encoder_descriptor*,"
    " heif_encoder** out_encoder);",
    "heif_error heif_context_get_encoder_for_format(heif_context* context, heif_compression_format format,"
    " heif_encoder**);",
    "void heif_encoder_release(heif_encoder*);",
    "heif_error heif_encoder_set_lossy_quality(heif_encoder*, int quality);",
    "heif_error heif_encoder_set_lossless(heif_encoder*, int enable);",
    "heif_error heif_encoder_set_parameter(heif_encoder*, const char* parameter_name, const char* value);",
    "heif_encoding_options* heif_encoding_options_alloc(void);",
    "void heif_encoding_options_free(heif_encoding_options*);",
    "heif_error heif_context_encode_image(heif_context*, const heif_image* image, heif_encoder* encoder,"
    " const heif_encoding_options* options, heif_image_handle** out_image_handle);",
    "heif_error heif_context_encode_thumbnail(heif_context*, const heif_image* image,"
    " const heif_image_handle* master_image_handle, heif_encoder* encoder,"
    " const heif_encoding_options* options, int bbox_size, heif_image_handle** out_thumb_image_handle);",
    "heif_error heif_context_set_primary_image(heif_context*, heif_image_handle* image_handle);",
    "heif_error heif_context_add_exif_metadata(heif_context*, const heif_image_handle* image_handle,"
    " const void* data, int size);",
    "heif_error heif_context_add_XMP_metadata(heif_context*, const heif_image_handle* image_handle,"
    " const void* data, int size);",
    "heif_error heif_context_add_generic_metadata(heif_context* ctx, const heif_image_handle* image_handle,"
    " const void* data, int size, const char* item_type, const char* content_type);",
    "heif_error heif_context_add_grid_image(heif_context* ctx, uint32_t image_width, uint32_t image_height,"
    " uint32_t tile_columns, uint32_t tile_rows, const heif_encoding_options* encoding_options,"
    " heif_image_handle** out_grid_image_handle);",
    "heif_error heif_context_add_image_tile(heif_context* ctx, heif_image_handle* tiled_image,"
    " uint32_t tile_x, uint32_t tile_y, const heif_image* image, heif_encoder* encoder);",
    "void heif_image_handle_set_pixel_aspect_ratio(heif_image_handle*, uint32_t aspect_h, uint32_t aspect_v);",
    "void heif_image_handle_set_content_light_level(const heif_image_handle*, const heif_content_light_level* in);",
    "void heif_image_handle_set_mastering_display_colour_volume(const heif_image_handle*,"
    " const heif_mastering_display_colour_volume* in);",
    "void heif_image_handle_set_ambient_viewing_environment(const heif_image_handle*,"
    " const heif_ambient_viewing_environment* in);",
    # items: reading any item, and copying items into a file being written (_write/attached.py)
    "int heif_context_get_number_of_items(const heif_context* ctx);",
    "int heif_context_get_list_of_item_IDs(const heif_context* ctx, heif_item_id* ID_array, int count);",
    "uint32_t heif_item_get_item_type(const heif_context* ctx, heif_item_id item_id);",
    "int heif_item_is_item_hidden(const heif_context* ctx, heif_item_id item_id);",
    "const char* heif_item_get_mime_item_content_type(const heif_context* ctx, heif_item_id item_id);",
    "const char* heif_item_get_mime_item_content_encoding(const heif_context* ctx, heif_item_id item_id);",
    "const char* heif_item_get_uri_item_uri_type(const heif_context* ctx, heif_item_id item_id);",
    "const char* heif_item_get_item_name(const heif_context* ctx, heif_item_id item_id);",
    "heif_error heif_item_set_item_name(heif_context* ctx, heif_item_id item, const char* item_name);",
    "heif_error heif_item_get_item_data(const heif_context* ctx, heif_item_id item_id,"
    " heif_metadata_compression* out_compression_format, uint8_t** out_data, size_t* out_data_size);",
    "void heif_release_item_data(const heif_context* ctx, uint8_t** item_data);",
    "size_t heif_context_get_item_references(const heif_context* ctx, heif_item_id from_item_id, int index,"
    " uint32_t* out_reference_type_4cc, heif_item_id** out_references_to);",
    "void heif_release_item_references(const heif_context* ctx, heif_item_id** references);",
    "heif_error heif_context_add_item_references(heif_context* ctx, uint32_t reference_type, heif_item_id from_item,"
    " const heif_item_id* to_item, int num_to_items);",
    "heif_error heif_context_add_item(heif_context* ctx, const char* item_type, const void* data, int size,"
    " heif_item_id* out_item_id);",
    "heif_error heif_context_add_precompressed_mime_item(heif_context* ctx, const char* content_type,"
    " const char* content_encoding, const void* data, int size, heif_item_id* out_item_id);",
    "heif_error heif_context_add_uri_item(heif_context* ctx, const char* item_uri_type, const void* data, int size,"
    " heif_item_id* out_item_id);",
    "heif_error heif_item_add_raw_property(const heif_context* context, heif_item_id itemId, uint32_t fourcc_type,"
    " const uint8_t* uuid_type, const uint8_t* data, size_t size, int is_essential,"
    " heif_property_id* out_propertyId);",
    "void heif_context_add_compatible_brand(heif_context* ctx, heif_brand2 compatible_brand);",
    "heif_brand2 heif_read_main_brand(const uint8_t* data, int len);",
    "heif_error heif_list_compatible_brands(const uint8_t* data, int len, heif_brand2** out_brands, int* out_size);",
    "void heif_free_list_of_compatible_brands(heif_brand2* brands_list);",
]

HELPERS = """
extern "Python" int64_t hk_reader_get_position(void* userdata);
extern "Python" int hk_reader_read(void* data, size_t size, void* userdata);
extern "Python" int hk_reader_seek(int64_t position, void* userdata);
extern "Python" heif_reader_grow_status hk_reader_wait_for_file_size(int64_t target_size, void* userdata);
int hk_dav1d_bind(const char* path, char* errbuf, size_t errlen);
heif_error hk_dav1d_register(void);
heif_error hk_dav1d_decode_data(const uint8_t* data, size_t size, int point, int threads, heif_image** out);
struct ArrowSchema;
struct ArrowArray;
int hk_arrow_export(void* keep, const uint8_t* data, int64_t pixels, struct ArrowSchema** out_schema,
    struct ArrowArray** out_array);
void hk_arrow_schema_capsule_free(void* capsule);
void hk_arrow_array_capsule_free(void* capsule);
typedef struct hk_context { heif_context* ctx; ...; } hk_context;
hk_context* hk_context_new(void);
void hk_context_retain(hk_context* owner);
void hk_context_release(hk_context* owner);
void hk_image_release(heif_image* image, hk_context* owner);
int hk_bind(const char* path, char* errbuf, size_t errlen);
int hk_copy_plane(const uint8_t* src, size_t src_stride, uint8_t* dst, size_t dst_stride,
    uint32_t width, uint32_t height, int channels, int bytes_per_sample, int shift_left, int swap_rb);
int hk_fill_plane(const uint8_t* src, size_t src_stride, int src_channels, int src_channel, int src_bits,
    uint8_t* dst, size_t dst_stride, int dst_channels, int dst_bits, uint32_t width, uint32_t height, int swap_rb);
void hk_expand_limited_range(uint8_t* data, size_t stride, uint32_t width, uint32_t height, int channels,
    int channel, int bytes_per_sample, int bits);
void hk_pad_plane(uint8_t* dst, size_t dst_stride, uint32_t filled_width, uint32_t filled_height,
    uint32_t width, uint32_t height, int bytes_per_pixel);
heif_error hk_write_to_memory(heif_context* ctx, uint8_t** out_data, size_t* out_size);
void hk_free(void* p);
void* hk_malloc(size_t size);
int hk_yuv_to_rgb(const uint8_t* y, size_t y_stride, const uint8_t* cb, size_t cb_stride,
    const uint8_t* cr, size_t cr_stride, const uint8_t* alpha, size_t alpha_stride, int alpha_bits,
    uint32_t width, uint32_t height, uint32_t x0, uint32_t y0, int bits, int shift_x, int shift_y, int matrix,
    int full_range, uint8_t* dst, size_t dst_stride, int channels, int bgr, int threads);
int hk_avif_yuv_to_rgb(const uint8_t* y, size_t y_stride, const uint8_t* cb, size_t cb_stride, const uint8_t* cr,
    size_t cr_stride, uint32_t width, uint32_t height, int shift_x, int shift_y, int matrix, int full_range,
    uint8_t* dst, size_t dst_stride, int channels, int bgr);
"""
