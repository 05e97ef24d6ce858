# shaders.cmake — every compiled shader variant: lumen_shader(NAME SOURCE [DEFINES...]).
# Each is compiled by glslc to SPIR-V (as a C initializer list) and embedded in the library by
# the generated shaders_embed.c; the backend looks variants up by NAME at run time.
set(LUMEN_QTYPES F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K)

lumen_shader(elementwise elementwise.comp)
lumen_shader(rms_norm rms_norm.comp)
foreach(T ${LUMEN_QTYPES})
  string(TOLOWER ${T} t)
  lumen_shader(get_rows_${t} get_rows.comp TYPE_${T})
endforeach()
foreach(D F32 F16 BF16 I32)
  string(TOLOWER ${D} d)
  lumen_shader(set_rows_${d} set_rows.comp DST_${D})
endforeach()
foreach(S F32 F16 BF16)
  foreach(D F32 F16 BF16)
    string(TOLOWER ${S} s)
    string(TOLOWER ${D} d)
    lumen_shader(cpy_${s}_${d} cpy.comp TYPE_${S} DST_${D})
  endforeach()
endforeach()
