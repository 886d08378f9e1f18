"""rsmt_studio.kernels"""
