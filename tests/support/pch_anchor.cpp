// The translation unit chokepoint_test_pch is built from (cmake/chokepoint.cmake): its precompiled
// header of gtest, gmock, nlohmann-json and fmt is what every test target reuses. No code.
