"""rsmt_studio.motion"""
